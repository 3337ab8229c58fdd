"""The integer-only TFLite model of a trained nce-tf network, with its 2-bit grids kept exactly.

TFLite has no 2-bit kernels and rejects 2-bit fake-quant ops (tfmot issue 574, tensorflow
issue 80335).  But a b-bit grid is a subset of an 8-bit grid with the same step, so the network
is re-expressed as an int8 QAT graph whose fake-quant ranges are chosen so that every int8 value
the converter produces is one of the original levels (``tf_facts.md``, "Export"):

- **2-bit weights** ``w_q = ints * step`` (:mod:`nce_tf.export.grid`), with the following BN folded
  in (``W' = w_q * c``, ``c = gamma / sqrt(var + eps)`` per output channel): per-channel 8-bit
  narrow-range fake-quant over ``+-127 step |c|``, so the int8 kernel holds ``ints`` (at 2 bits
  ``{-3, -1, 1, 3}``: at most 4 distinct values per layer).  An 8-bit zero-free grid (SAWB,
  DoReFa) reaches 255 steps, past int8: there the range is the channel's largest weight
  (ordinary max-abs int8, off its levels by at most half an int8 step) instead of clipping every
  weight past 127 steps (which halved a W8A8 MobileNetV2's largest weights);
- **PACT activations** (levels ``k alpha / (2^b - 1)``): 8-bit fake-quant over
  ``[0, 255 alpha / (2^b - 1)]`` (the same step; negatives saturate to 0, which is the clip at 0),
  then ``minimum(x, alpha)``: the int8 tensor takes only the PACT levels; those are restated
  exactly at ``1 / (255 // (2^b - 1))`` of a level for the layers reading them, whose int32
  biases (at ``s_in * s_w``) would otherwise round by up to 0.3 of a PACT level (:meth:`Plan.pact`);
- everything kept at full precision in the Keras model (first conv, classifier, shortcuts,
  the residual branch before its add, pooling outputs, the input) is converted the ordinary int8
  way: per-channel max-abs weights, activation ranges from min / max over a representative set
  of training images (``calibrate``).

A tensor is requantized to an int8 step only while its calibrated values stay under
``REACH_LIMIT`` = 2^28 steps of it (:meth:`Plan.check_reach`, at each PACT site, where the
converter requantizes the conv accumulator straight to the activation's step): TFLite's builtin
kernels rescale ``acc * 2^shift`` in int32 (``MultiplyByQuantizedMultiplier``, ``2^shift`` about
the multiplier ``s_in s_w / s_out``), which wraps once a value is about 2^30 output steps
away, and flips outputs by the whole int8 range; XNNPACK refuses such a file already (it
refuses multipliers of 256 and more).  Measured on a conv + BN + PACT (alpha 1): exact at
2^29.3 steps, 45% of the logits off at 2^32.7.  Only a diverged network gets there (a
MobileNetV2 after one unclipped SGD step on 4 images: BN gammas of 1000, pre-activations of
1e9 before PACT clips of 4); the export refuses it in one line instead of writing a wrong file.

A weight range is also widened where a bias would not fit int32 at the converter's bias step
``s_in * s_w`` (:meth:`Plan.bias_fit`: a layer whose weights all but died beside a live BN bias).

Each conv's and dense layer's weight fake-quant op is named after its layer
(:func:`kernel_tag`), so the int8 file's filter tensors carry their layer's name; that is
how :mod:`nce_tf.export.int4` knows which filters hold a low-bit grid.

The graph is built by walking the Keras functional model layer by layer: each layer's op
(:func:`nce_tf.search.ops.keras_op`) makes its piece (``Op.export_step``) from a :class:`Plan`
(the wiring, the ranges, the helpers above), the zoo's and any derived network's layers
(``QuantConv2D`` / ``Conv2D`` + ``BatchNormalization``, ``QuantActivation`` / ``ReLU``, ``Add``,
pooling, ``QuantDense``); explicit ``round()`` is never used (it would break the converter's
int8 fusion).
"""

import re

import keras
import numpy as np
import tensorflow as tf

from nce_tf.errors import UsageError
from nce_tf.export.grid import integer_grid
from nce_tf.search.ops import keras_op
from nce_tf.search.ops.keras_read import bn_vector


def kernel_tag(layer):
    """The name the int8 file gives ``layer``'s filter (one ``;``-separated part of the tensor name).

    :mod:`nce_tf.export.int4` finds a layer's filter by it, so its choice of tensors to pack
    rests on the layer map, not on the values alone; the characters TF refuses in op names become ``_``.
    """
    return "kernel_of_" + re.sub(r"[^A-Za-z0-9_.-]", "_", layer.name)


REACH_LIMIT = 2.0**28  # steps; TFLite's int32 rescale wraps near 2^30 (module doc): a 4x margin for held-out data
BIAS_LIMIT = 2.0**30  # int32 bias steps: half of int32, the other half for the accumulator's sum (Plan.bias_fit)
DEAD_RANGE = 1.0  # the int8 range of a tensor calibrated to 0 everywhere (_fq): any range holds 0 exactly


def calibrate(model, images, batch_size=32):
    """Min / max of the model input and of every layer's output over ``images``."""
    layers = [layer for layer in model.layers if getattr(keras_op(layer), "kind", None) != "input"]
    probe = keras.Model(model.inputs, [layer.output for layer in layers])
    ranges = {"__input__": (float(np.min(images)), float(np.max(images)))}
    for start in range(0, len(images), batch_size):
        outs = probe([images[start:start + batch_size]], training=False)
        if len(layers) == 1:  # a one-output model returns its tensor, not a list: zip would walk the batch
            outs = [outs]
        for layer, o in zip(layers, outs):
            o = np.asarray(o)
            lo, hi = ranges.get(layer.name, (np.inf, -np.inf))
            ranges[layer.name] = (min(lo, float(o.min())), max(hi, float(o.max())))
    return ranges


def int8_range(lo, hi):
    """The int8 range a tensor calibrated to ``[lo, hi]`` is requantized over: widened to hold 0 (the
    zero point), and :data:`DEAD_RANGE` wide for a tensor calibrated to 0 everywhere."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        # A dead tensor (a conv reading a ReLU that never fired). 0 is exact at any step, and a step
        # of 1e-8 / 255 made its producer's requantization multiplier s_in s_w / s_out about 1e6: past
        # the 256 XNNPACK accepts, and LiteRT 2.3.0's XNNPACK delegate then aborted the process (a
        # double free) instead of refusing the file.
        hi = lo + DEAD_RANGE
    return lo, hi


def _fq(x, lo, hi):
    lo, hi = int8_range(lo, hi)
    return tf.quantization.fake_quant_with_min_max_vars(x, min=lo, max=hi, num_bits=8)


class Values(dict):
    """The graph's tensors by the Keras tensor they stand for (``values[layer.output] = y``)."""

    def __getitem__(self, tensor):
        return super().__getitem__(id(tensor))

    def __setitem__(self, tensor, value):
        super().__setitem__(id(tensor), value)


class Plan:
    """What each layer's op reads to make its piece of the graph (``Op.export_step``): the model's
    wiring, the calibrated ranges and the int8 building blocks (exact weight grids, requantization)."""

    def __init__(self, model, ranges, int8=True):
        self.ranges, self.int8 = ranges, int8
        self._consumers = {}
        for layer in model.layers:
            for t in layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]:
                self._consumers.setdefault(id(t), []).append(layer)
        self._producer = {id(layer.output): layer for layer in model.layers}

    def consumers(self, tensor):
        return self._consumers.get(id(tensor), [])

    def only(self, tensor):
        """The one layer reading ``tensor``, else ``None`` (none, or several: a layer folded into its
        producer, or left to requantize it, must be its only reader)."""
        consumers = self.consumers(tensor)
        return consumers[0] if len(consumers) == 1 else None

    def producer(self, tensor):
        return self._producer.get(id(tensor))

    def activated(self, layer):
        """Whether a ReLU site (PACT or ReLU) reads ``layer``'s output: it requantizes for both.  Any of
        its readers: PACT's clip must read the float output (a requantized one gives its MINIMUM two
        scales, which the converter refuses), so a conv that another layer reads too stays float
        for that reader (the converter quantizes it there: a few float ops, the same values)."""
        return any(getattr(keras_op(c), "kind", None) == "act" for c in self.consumers(layer.output))

    def requant(self, y, layer):
        """``y`` rounded to the int8 range calibrated for ``layer``'s output (the float graph: ``y``)."""
        return _fq(y, *self.ranges[layer.name]) if self.int8 else y

    def step(self, layer):
        """The int8 step ``layer``'s output is requantized to (:meth:`requant`)."""
        lo, hi = int8_range(*self.ranges[layer.name])
        return (hi - lo) / 255.0

    def input(self, images):
        """The model input as the graph reads it: int8 over its calibrated range (the float graph: as is)."""
        return _fq(images, *self.ranges["__input__"]) if self.int8 else images

    def pact(self, x, alpha, bits):
        """PACT's levels ``k alpha / (2^b - 1)`` of ``x``.

        Int8 graph: an 8-bit fake-quant over ``[0, 255 alpha / (2^b - 1)]`` (one level per int8 step;
        negatives saturate to 0, the clip at 0), then ``minimum(x, alpha)``: the int8 tensor takes
        only the PACT levels.  Those levels are then restated exactly on a finer int8 step,
        ``alpha / ((2^b - 1) m)`` with ``m = 255 // (2^b - 1)`` (each level is ``k m`` of it; at 2
        bits ``m = 85``): a conv reading this tensor stores its bias as int32 at ``s_in * s_w``, and
        at one PACT level per step that grid was 0.62 of a biased conv's output step (README,
        Export), m times coarser than now.  The file holds the restatement as a RELU op that
        requantizes (TFLite's int8 RELU takes its own output scale; back-to-back fake-quants are
        merged by the converter).

        Float graph: ``floor(clip(x, 0, alpha) / s + 1/2) s`` with ``s = alpha / (2^b - 1)``, the
        rounding of TF's fake-quant op, which the Keras layer runs (``FLOOR``, not ``ROUND``:
        TFLite's ``ROUND`` breaks ties to even).
        """
        levels = 2**bits - 1
        if not self.int8:
            s = alpha / levels
            return tf.floor(tf.clip_by_value(x, 0.0, alpha) / s + 0.5) * s
        x = tf.quantization.fake_quant_with_min_max_vars(x, min=0.0, max=255.0 * alpha / levels, num_bits=8)
        x = tf.minimum(x, alpha)
        fine = 255 // levels
        if fine > 1:  # through a ReLU (a no-op here): the converter merges back-to-back fake-quants
            x = tf.quantization.fake_quant_with_min_max_vars(tf.nn.relu(x), min=0.0,
                                                             max=255.0 * alpha / (levels * fine), num_bits=8)
        return x

    def _input_range(self, tensor):
        """The calibrated range of the layer output ``tensor`` is (the model input's if none)."""
        return self.ranges.get(getattr(self.producer(tensor), "name", None), self.ranges["__input__"])

    def bias_fit(self, bound, bias, source):
        """``bound`` (a kernel's int8 range, per output channel or one) raised where needed so that
        ``bias`` fits int32 at the converter's bias step ``s_in * s_w`` (``s_w = bound / 127``):
        ``|bias| / (s_in s_w) <= BIAS_LIMIT`` = 2^30.

        Why: a layer whose weights have all but died (MobileNetV2's ``block_2_expand`` after
        compression: kernel 1e-8, folded 3e-7, BN beta 0.7) has a bias of 4e9 such steps.  The
        converter then widens the filter's scale by itself (which the graph did not model), still
        saturates the bias at -2^31, and the accumulator wraps to the top of int32 on the first
        negative product (measured: 510 output steps off).  Raising the bound here keeps the file
        and the graph the same network: the weights lose precision only where they are below
        ``|bias| / (s_in 2^30)``, i.e. 1e-9 of the output's scale.  ``s_in`` is bounded below by
        ``max |x| / 255`` over the calibrated input range (every int8 input step is at least that),
        which makes the raised bound an upper estimate.  The float graph: ``bound`` as is.
        """
        if not self.int8:
            return bound
        lo, hi = self._input_range(source)
        if max(abs(lo), abs(hi)) < 1e-8:
            # A dead input (calibrated to 0: a PACT site that never fired) has no calibrated step to
            # fit the bias to (_fq gives it DEAD_RANGE); a bound raised against a tiny step failed
            # TFLite's FULLY_CONNECTED check (bias scale against input x filter scale). Left as it was.
            return bound
        s_in = max(abs(lo), abs(hi)) / 255.0
        need = 127.0 * np.abs(np.asarray(bias, "float64")) / (s_in * BIAS_LIMIT)
        if np.ndim(bound) == 0:
            return max(float(bound), float(np.max(need, initial=0.0)))
        return np.maximum(bound, need).astype("float32")

    def check_reach(self, layer, step):
        """Refuses ``layer`` when the tensor it reads was calibrated to more than :data:`REACH_LIMIT`
        of its own output ``step`` (``max |x| / step``): the int8 file would wrap (module doc).
        The float graph has no such limit."""
        if not self.int8:
            return
        lo, hi = self._input_range(layer.input)
        reach = max(abs(lo), abs(hi)) / step
        if reach >= REACH_LIMIT:
            raise UsageError(
                f"Export cannot convert layer {layer.name!r}: its input reaches {reach:.3g} times its int8 step "
                f"(calibrated range [{lo:.3g}, {hi:.3g}], step {step:.3g}), past which int8 TFLite's requantization "
                f"wraps. Received: reach={reach:.3g}. Allowed: under 2^28 = {REACH_LIMIT:.3g} (a network this far out "
                "of scale has diverged: check its batch-norm scales and activation clips).")

    def settle(self, y, layer):
        """``layer``'s output as the converter should see it: left to the activation after it, if
        any, else requantized."""
        return y if self.activated(layer) else self.requant(y, layer)

    def kernel(self, layer):
        """``(kernel, step)``: a quantized layer's kernel as ``ints * step`` on its grid (``step`` per
        output channel), a float one's as it is (``step`` ``None``).  The int8 range keeps ``step``
        where ``|ints| <= 127`` and is the largest weight otherwise (:func:`_folded`)."""
        if getattr(layer, "kernel_quantizer", None) is None:
            return layer.kernel.numpy(), None
        g = integer_grid(layer)
        return g.values(), g.step

    def folded(self, conv, bn, depthwise=False):
        """Folded kernel and bias of ``conv`` (+ ``bn``), and the per-channel int8 range (a depthwise
        kernel ``[k, k, C, 1]`` as ``[k, k, 1, C]``: channels last, as a conv's)."""
        return _folded(conv, bn, *self.kernel(conv), depthwise)

    def weights(self, kernel, bound, layer, per_channel=True):
        """The int8 narrow-range fake-quant of a kernel, named after its layer (:func:`kernel_tag`);
        the float graph's kernel as it is (a quantized layer's already on its grid)."""
        if not self.int8:
            return tf.constant(kernel)
        if per_channel:
            return tf.quantization.fake_quant_with_min_max_vars_per_channel(
                tf.constant(kernel), min=-bound, max=bound, num_bits=8, narrow_range=True, name=kernel_tag(layer))
        return tf.quantization.fake_quant_with_min_max_vars(
            tf.constant(kernel), min=-bound, max=bound, num_bits=8, narrow_range=True, name=kernel_tag(layer))

    @staticmethod
    def conv_bias(bias):
        """A conv's bias (per-channel weight scales) as the converter must see it (:func:`_not_splat`)."""
        return _not_splat(np.asarray(bias, "float32"))

    @staticmethod
    def refuse(layer, setting=None, allowed=None):
        """A one-line refusal: of the layer type, or of one ``setting`` (``"name=value"``) the int8 graph
        would not compute as Keras does, with what is ``allowed``."""
        if setting is not None:
            raise UsageError(f"Export cannot convert layer {layer.name!r} of type {type(layer).__name__}. "
                             f"Received: {setting}. Allowed: {allowed}.")
        raise UsageError(f"Export cannot convert layer {layer.name!r} of type {type(layer).__name__}. "
                         "Allowed: conv, depthwise conv, BN, ReLU / PACT, add, concatenate, pooling, "
                         "flatten, dropout and dense layers.")


def _folded(conv, bn, kernel, step, depthwise):
    if depthwise:  # [k, k, C, 1] as [k, k, 1, C]; a per-channel step [C, 1] as [C] (multiplier 1 only)
        kernel = np.transpose(kernel, (0, 1, 3, 2))
        if np.ndim(step):
            step = np.reshape(step, -1)
    if step is not None:  # the grid's reach per channel: 127 steps, or its largest level when that is further
        step = np.broadcast_to(step, kernel.shape[-1:])
        span = np.maximum(127.0 * step, np.abs(kernel).max(axis=tuple(range(kernel.ndim - 1))))
    bias = conv.bias.numpy() if conv.use_bias else np.zeros(kernel.shape[-1], "float32")
    if bn is not None:
        c = bn_vector(bn, "gamma") / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
        kernel = kernel * c
        bias = (bias - bn.moving_mean.numpy()) * c + bn_vector(bn, "beta")
    else:
        c = np.ones(kernel.shape[-1], "float32")
    if step is not None:  # the int8 grid: the same step (exact) where the integers fit int8, else max-abs
        bound = span * np.abs(c)
    else:
        bound = np.abs(kernel).max(axis=tuple(range(kernel.ndim - 1)))
    return kernel.astype("float32"), _not_splat(bias.astype("float32")), np.maximum(bound, 1e-12).astype("float32")


def _not_splat(bias):
    """``bias`` with its last channel moved by one float32 ulp when every channel holds one nonzero value.

    TF 2.21's converter quantizes such a constant (a "splat") with the first output channel's bias
    scale ``s_in * s_w[0]`` for every channel: measured, a conv of bias 0.5 on 4 channels whose weight
    scales differ came out of the int8 file 0.33, 1.4 and 3.6 off on channels 1-3.  An ulp is 6e-8 of
    the bias: under float32's own rounding of the sum it is added to."""
    if bias.size > 1 and bias[0] != 0 and np.all(bias == bias[0]):
        bias = bias.copy()
        bias[-1] = np.nextafter(bias[-1], np.float32(0))
    return bias


def build_graph(model, ranges, int8=True):
    """A function ``images -> logits`` implementing ``model`` with int8-exact fake quantization: each
    layer's op makes its piece (``Op.export_step``), run in the model's layer order.  ``int8=False``:
    the same network in float32 ops only (BN folded, the quantized kernels as constants on their
    grids, PACT rounded by ``floor``), which the converter keeps float (fake-quant ops it would
    turn into QUANTIZE / DEQUANTIZE pairs)."""
    plan = Plan(model, ranges, int8)
    steps = []
    for layer in model.layers:
        op = keras_op(layer)
        step = plan.refuse(layer) if op is None else op.export_step(layer, plan)
        if step is not None:
            steps.append(step)

    def graph(images):
        values = Values()
        values[model.inputs[0]] = plan.input(images)
        for step in steps:
            step(values)
        return values[model.outputs[0]]

    return graph


def _converter(model, graph):
    """A TFLite converter of ``graph`` (``images -> logits``) at the model's input shape, batch 1."""
    shape = (1, *model.inputs[0].shape[1:])
    fn = tf.function(graph, input_signature=[tf.TensorSpec(shape, tf.float32, name="images")])
    holder = tf.Module()  # the weights are constants of the graph; the converter wants an owner anyway
    holder.fn = fn
    return tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], holder)


def convert_float(model):
    """The float32 TFLite flatbuffer (bytes) of ``model``: :func:`build_graph`'s float graph, converted
    without optimizations.  ``TFLiteConverter.from_keras_model`` is not used: it turns the Keras
    model's 2-bit fake-quant ops into QUANTIZE / DEQUANTIZE pairs whose file computed other logits
    (measured on a trained W2A2 ResNet-8: median |logit difference| 0.57)."""
    return _converter(model, build_graph(model, {}, int8=False)).convert()


def convert(model, representative_images, int8_io=False):
    """The int8 TFLite flatbuffer (bytes) of ``model``; ranges calibrated on ``representative_images``."""
    graph = build_graph(model, calibrate(model, representative_images))
    converter = _converter(model, graph)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if int8_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert(), graph
