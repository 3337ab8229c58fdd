"""The integer-only TFLite model of a trained nce-tf network, with its 2-bit grids kept exactly.

TFLite has no 2-bit kernels and rejects 2-bit fake-quant ops (tfmot issue 574, tensorflow
issue 80335).  But a b-bit grid is a subset of an 8-bit grid with the same step, so the network
is re-expressed as an int8 QAT graph whose fake-quant ranges are chosen so that every int8 value
the converter produces is one of the original levels (``tf_facts.md``, "Export"):

- **2-bit weights** ``w_q = ints * step`` (:mod:`nce_tf.export.grid`), with the following BN folded
  in (``W' = w_q * c``, ``c = gamma / sqrt(var + eps)`` per output channel): per-channel 8-bit
  narrow-range fake-quant over ``+-127 step |c|``, so the int8 kernel holds ``ints`` (at 2 bits
  ``{-3, -1, 1, 3}``: at most 4 distinct values per layer);
- **PACT activations** (levels ``k alpha / (2^b - 1)``): 8-bit fake-quant over
  ``[0, 255 alpha / (2^b - 1)]`` (the same step; negatives saturate to 0, which is the clip at 0),
  then ``minimum(x, alpha)``: the int8 tensor takes only the PACT levels;
- everything kept at full precision in the Keras model (first conv, classifier, shortcuts,
  the residual branch before its add, pooling outputs, the input) is converted the ordinary int8
  way: per-channel max-abs weights, activation ranges from min / max over a representative set
  of training images (``calibrate``).

Each conv's and dense layer's weight fake-quant op is named after its layer
(:func:`kernel_tag`), so the int8 file's filter tensors carry their layer's name; that is
how :mod:`nce_tf.export.int4` knows which filters hold a low-bit grid.

The graph is built by walking the Keras functional model layer by layer (the zoo's and any
derived network's layers: ``QuantConv2D`` / ``Conv2D`` + ``BatchNormalization``,
``QuantActivation`` / ``ReLU``, ``Add``, pooling, ``QuantDense``); explicit ``round()`` is never
used (it would break the converter's int8 fusion).
"""

import re

import keras
import numpy as np
import tensorflow as tf

from nce_tf.errors import UsageError
from nce_tf.export.grid import integer_grid
from nce_tf.layers import QuantActivation, QuantConv2D


def kernel_tag(layer):
    """The name the int8 file gives ``layer``'s filter (one ``;``-separated part of the tensor name).

    :mod:`nce_tf.export.int4` finds a layer's filter by it, so its choice of tensors to pack
    rests on the layer map, not on the values alone; the characters TF refuses in op names become ``_``.
    """
    return "kernel_of_" + re.sub(r"[^A-Za-z0-9_.-]", "_", layer.name)


def _consumers(model):
    out = {}
    for layer in model.layers:
        inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        for t in inputs:
            out.setdefault(id(t), []).append(layer)
    return out


def calibrate(model, images, batch_size=32):
    """Min / max of the model input and of every layer's output over ``images``."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    probe = keras.Model(model.inputs, [layer.output for layer in layers])
    ranges = {"__input__": (float(np.min(images)), float(np.max(images)))}
    for start in range(0, len(images), batch_size):
        outs = probe([images[start:start + batch_size]], training=False)
        for layer, o in zip(layers, outs):
            o = np.asarray(o)
            lo, hi = ranges.get(layer.name, (np.inf, -np.inf))
            ranges[layer.name] = (min(lo, float(o.min())), max(hi, float(o.max())))
    return ranges


def _fq(x, lo, hi):
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    return tf.quantization.fake_quant_with_min_max_vars(x, min=lo, max=hi, num_bits=8)


def _pact_alpha(layer):
    return max(float(layer.alpha.numpy()), 1e-3), layer.quantizer.bits  # the PACT forward's floor


def _folded(conv, bn):
    """Folded kernel and bias of ``conv`` (+ ``bn``), and the per-channel int8 range."""
    quantized = getattr(conv, "kernel_quantizer", None) is not None
    if quantized:
        g = integer_grid(conv)
        kernel = g.values()
    else:
        kernel = conv.kernel.numpy()
    if isinstance(conv, keras.layers.DepthwiseConv2D):  # [k, k, C, 1] -> [k, k, 1, C]: channels last, as a conv's
        kernel = np.transpose(kernel, (0, 1, 3, 2))
    step = np.broadcast_to(g.step, kernel.shape[-1:]) if quantized else None
    bias = conv.bias.numpy() if conv.use_bias else np.zeros(kernel.shape[-1], "float32")
    if bn is not None:
        c = bn.gamma.numpy() / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
        kernel = kernel * c
        bias = (bias - bn.moving_mean.numpy()) * c + bn.beta.numpy()
    else:
        c = np.ones(kernel.shape[-1], "float32")
    axes = tuple(range(kernel.ndim - 1))
    if quantized:  # the same step on the int8 grid: int8 values are exactly the b-bit integers
        bound = 127.0 * step * np.abs(c)
    else:
        bound = np.abs(kernel).max(axis=axes)
    return kernel.astype("float32"), bias.astype("float32"), np.maximum(bound, 1e-12).astype("float32")


def build_graph(model, ranges):
    """A function ``images -> logits`` implementing ``model`` with int8-exact fake quantization."""
    consumers = _consumers(model)
    producer = {id(layer.output): layer for layer in model.layers}
    only = lambda t: consumers.get(id(t), [None])[0]  # noqa: E731  each zoo tensor has one consumer

    def activated(layer):  # the activation layer right after ``layer``, if any
        nxt = only(layer.output)
        return nxt if isinstance(nxt, (QuantActivation, keras.layers.ReLU)) else None

    plan = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            bn = only(layer.output)
            bn = bn if isinstance(bn, keras.layers.BatchNormalization) else None
            kernel, bias, bound = _folded(layer, bn)
            plan.append(("dwconv", layer, bn or layer, kernel, bias, bound, layer.input, layer.strides[0],
                         layer.padding.upper()))
        # Exact types: a user's Conv2D subclass may compute something else in its call().
        elif type(layer) in (QuantConv2D, keras.layers.Conv2D):
            bn = only(layer.output)
            bn = bn if isinstance(bn, keras.layers.BatchNormalization) else None
            kernel, bias, bound = _folded(layer, bn)
            pool = producer.get(id(layer.input))
            source, stride, padding = layer.input, layer.strides[0], layer.padding.upper()
            if isinstance(pool, keras.layers.AveragePooling2D) and layer.kernel_size == (1, 1) and stride == 1:
                # AvgPool(p) + 1x1 conv == a p x p conv of stride p with every tap W / p^2. Fused, the
                # conv reads the PACT tensor at its own scale; apart, the converter requantizes it for
                # the pool and feeds the other consumer a float copy (a float conv in the model).
                p = pool.pool_size[0]
                kernel = np.tile(kernel / p**2, (p, p, 1, 1))
                bound = bound / p**2
                source, stride, padding = pool.input, p, "VALID"
            plan.append(("conv", layer, bn or layer, kernel, bias, bound, source, stride, padding))
        elif isinstance(layer, keras.layers.BatchNormalization):
            if not isinstance(producer.get(id(layer.input)), (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
                raise UsageError(f"Export folds BatchNormalization into the conv before it. Received: {layer.name!r}.")
        elif isinstance(layer, keras.layers.AveragePooling2D) and all(
                isinstance(c, keras.layers.Conv2D) and c.kernel_size == (1, 1) and c.strides == (1, 1)
                for c in consumers.get(id(layer.output), [])):
            continue  # fused into the 1x1 conv after it
        elif isinstance(layer, keras.layers.Dense):
            if getattr(layer, "kernel_quantizer", None) is not None:
                g = integer_grid(layer)
                kernel, bound = g.values(), float(np.max(g.step)) * 127.0
            else:
                kernel = layer.kernel.numpy()
                bound = float(np.abs(kernel).max())
            bias = layer.bias.numpy() if layer.use_bias else np.zeros(kernel.shape[-1], "float32")
            plan.append(("dense", layer, layer, kernel, bias, max(bound, 1e-12)))
        elif isinstance(layer, QuantActivation):
            plan.append(("pact", layer, layer, *_pact_alpha(layer)))
        elif isinstance(layer, (keras.layers.ReLU, keras.layers.Add,
                                keras.layers.AveragePooling2D, keras.layers.MaxPooling2D,
                                keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D,
                                keras.layers.Concatenate, keras.layers.Flatten, keras.layers.Dropout)):
            plan.append(("op", layer, layer))
        else:
            raise UsageError(f"Export cannot convert layer {layer.name!r} of type {type(layer).__name__}. "
                             "Allowed: conv, depthwise conv, BN, ReLU / PACT, add, concatenate, pooling, "
                             "flatten, dropout and dense layers.")

    input_id = id(model.inputs[0])

    def graph(images):
        values = {input_id: _fq(images, *ranges["__input__"])}
        for step in plan:
            kind, layer, out_layer = step[:3]
            if kind == "conv":
                kernel, bias, bound, source, stride, padding = step[3:]
                w = tf.quantization.fake_quant_with_min_max_vars_per_channel(
                    tf.constant(kernel), min=-bound, max=bound, num_bits=8, narrow_range=True, name=kernel_tag(layer))
                y = tf.nn.conv2d(values[id(source)], w, stride, padding) + bias
                values[id(out_layer.output)] = y if activated(out_layer) else _fq(y, *ranges[out_layer.name])
            elif kind == "dwconv":
                kernel, bias, bound, source, stride, padding = step[3:]
                w = tf.quantization.fake_quant_with_min_max_vars_per_channel(
                    tf.constant(kernel), min=-bound, max=bound, num_bits=8, narrow_range=True, name=kernel_tag(layer))
                w = tf.transpose(w, (0, 1, 3, 2))  # back to [k, k, C, 1]
                y = tf.nn.depthwise_conv2d(values[id(source)], w, [1, stride, stride, 1], padding) + bias
                values[id(out_layer.output)] = y if activated(out_layer) else _fq(y, *ranges[out_layer.name])
            elif kind == "dense":
                kernel, bias, bound = step[3:]
                w = tf.quantization.fake_quant_with_min_max_vars(
                    tf.constant(kernel), min=-bound, max=bound, num_bits=8, narrow_range=True, name=kernel_tag(layer))
                y = tf.matmul(values[id(layer.input)], w) + bias
                values[id(layer.output)] = y if activated(layer) else _fq(y, *ranges[layer.name])
            elif isinstance(layer, keras.layers.Concatenate):
                y = tf.concat([values[id(t)] for t in layer.input], axis=-1)
                values[id(layer.output)] = _fq(y, *ranges[layer.name])
            elif isinstance(layer, keras.layers.Flatten):
                x = values[id(layer.input)]
                values[id(layer.output)] = tf.reshape(x, [tf.shape(x)[0], -1])
            elif isinstance(layer, keras.layers.Dropout):
                values[id(layer.output)] = values[id(layer.input)]
            elif isinstance(layer, keras.layers.GlobalMaxPooling2D):
                values[id(layer.output)] = tf.reduce_max(values[id(layer.input)], axis=[1, 2])
            elif kind == "pact":
                alpha, bits = step[3:]
                x = tf.quantization.fake_quant_with_min_max_vars(
                    values[id(layer.input)], min=0.0, max=255.0 * alpha / (2**bits - 1), num_bits=8)
                values[id(layer.output)] = tf.minimum(x, alpha)
            elif isinstance(layer, keras.layers.ReLU):
                values[id(layer.output)] = _fq(tf.nn.relu(values[id(layer.input)]), *ranges[layer.name])
            elif isinstance(layer, keras.layers.Add):
                first, *rest = [values[id(t)] for t in layer.input]
                y = first
                for t in rest:  # binary ADD has an int8 kernel; ADD_N does not
                    y = tf.add(y, t)
                values[id(layer.output)] = y if activated(layer) else _fq(y, *ranges[layer.name])
            elif isinstance(layer, keras.layers.AveragePooling2D):
                y = tf.nn.avg_pool2d(values[id(layer.input)], layer.pool_size, layer.strides,
                                     layer.padding.upper())
                values[id(layer.output)] = _fq(y, *ranges[layer.name])
            elif isinstance(layer, keras.layers.MaxPooling2D):  # same scale in and out: exact
                values[id(layer.output)] = tf.nn.max_pool2d(values[id(layer.input)], layer.pool_size,
                                                            layer.strides, layer.padding.upper())
            elif isinstance(layer, keras.layers.GlobalAveragePooling2D):
                y = tf.reduce_mean(values[id(layer.input)], axis=[1, 2])
                values[id(layer.output)] = _fq(y, *ranges[layer.name])
        return values[id(model.outputs[0])]

    return graph


def convert(model, representative_images, int8_io=False):
    """The int8 TFLite flatbuffer (bytes) of ``model``; ranges calibrated on ``representative_images``."""
    ranges = calibrate(model, representative_images)
    graph = build_graph(model, ranges)
    shape = (1, *model.inputs[0].shape[1:])
    fn = tf.function(graph, input_signature=[tf.TensorSpec(shape, tf.float32, name="images")])
    holder = tf.Module()  # the weights are constants of the graph; the converter wants an owner anyway
    holder.fn = fn
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], holder)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if int8_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert(), graph
