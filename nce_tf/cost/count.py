"""Exact MACs and parameter counts of a built Keras model.

Conventions (they reproduce the NCE paper's FLOPs/PARAMs columns, which follow TAS):

- **MACs** ("FLOPs" in the paper) are the multiply-accumulates of convolutions and dense
  layers only: ``k_h * k_w * (C_in / groups) * C_out * H_out * W_out`` for a conv,
  ``k_h * k_w * C_in * multiplier * H_out * W_out`` for a depthwise conv, and
  ``C_in * C_out`` per position for a dense layer.  No bias, BN, pooling or activation terms.
- **Parameters** are conv/dense kernels and biases plus BatchNorm's gamma and beta.  BN's
  moving statistics and PACT's clip values are state, not parameters, and are not counted.
- **Weight memory** stores each kernel at its layer's weight bit width and everything
  else (biases, BN) as float32.

Example:

>>> import nce_tf
>>> cost = nce_tf.cost.count_arch("resnet20")
>>> cost.macs, cost.params
(40813184, 272474)
"""

import dataclasses
import math

import keras

from nce_tf import quant

_FLOAT_BITS = quant.FULL_PRECISION


@dataclasses.dataclass
class LayerCost:
    """Cost of one conv or dense layer (or the BN summary row)."""

    name: str
    kind: str
    in_channels: int
    out_channels: int
    kernel: str
    output_size: str
    w_bits: int
    macs: int
    params: int
    memory_bytes: float

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ModelCost:
    """Per-layer costs and totals of a model."""

    name: str
    layers: list
    bn_layers: int
    bn_params: int

    @property
    def macs(self):
        return sum(layer.macs for layer in self.layers)

    @property
    def params(self):
        return sum(layer.params for layer in self.layers) + self.bn_params

    @property
    def memory_bytes(self):
        """Weight memory with every kernel at its bit width (BN and biases float32)."""
        return sum(layer.memory_bytes for layer in self.layers) + self.bn_params * 4

    @property
    def float_memory_bytes(self):
        return self.params * 4

    def to_dict(self):
        return {
            "model": self.name, "macs": self.macs, "params": self.params,
            "memory_bytes": self.memory_bytes, "float_memory_bytes": self.float_memory_bytes,
            "bn_layers": self.bn_layers, "bn_params": self.bn_params,
            "layers": [layer.to_dict() for layer in self.layers],
        }


def _w_bits(layer):
    q = getattr(layer, "kernel_quantizer", None)
    return q.bits if q is not None else _FLOAT_BITS


def _row(layer, kind, cin, cout, kernel, out_shape, macs, kernel_params, bias_params, w_bits):
    size = "x".join(str(d) for d in out_shape[1:-1]) or "-"
    return LayerCost(
        name=layer.name, kind=kind, in_channels=int(cin), out_channels=int(cout), kernel=kernel,
        output_size=size, w_bits=w_bits, macs=int(macs),
        params=int(kernel_params + bias_params),
        memory_bytes=kernel_params * w_bits / 8 + bias_params * 4,
    )


def _layer_cost(layer):
    """A ``LayerCost`` for conv/dense layers, else ``None``."""
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) and not isinstance(
        layer, keras.layers.SeparableConv2D
    ):
        out = layer.output.shape
        cin = layer.input.shape[-1]
        kh, kw = layer.kernel_size
        positions = math.prod(out[1:-1])
        kernel_params = math.prod(layer.kernel.shape)
        bias_params = math.prod(layer.bias.shape) if layer.use_bias else 0
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kind, cout = "depthwise", out[-1]
            macs = kh * kw * cout * positions
        else:
            kind, cout = "conv", out[-1]
            macs = kh * kw * (cin // layer.groups) * cout * positions
        return _row(layer, kind, cin, cout, f"{kh}x{kw}/{layer.strides[0]}", out, macs,
                    kernel_params, bias_params, _w_bits(layer))
    if isinstance(layer, keras.layers.Dense):
        out = layer.output.shape
        cin, cout = layer.kernel.shape
        positions = math.prod(out[1:-1]) if len(out) > 2 else 1
        bias_params = cout if layer.use_bias else 0
        return _row(layer, "dense", cin, cout, "-", out, cin * cout * positions,
                    cin * cout, bias_params, _w_bits(layer))
    return None


def _walk(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _walk(layer)
        else:
            yield layer


def count_model(model):
    """Counts MACs, parameters and weight memory of a built Keras model.

    Args:
        model: a built functional or Sequential ``keras.Model`` (nested models are walked).

    Returns:
        A :class:`ModelCost` with one row per conv/dense layer.
    """
    rows, bn_layers, bn_params = [], 0, 0
    for layer in _walk(model):
        row = _layer_cost(layer)
        if row is not None:
            rows.append(row)
        elif isinstance(layer, keras.layers.BatchNormalization):
            bn_layers += 1
            bn_params += sum(math.prod(w.shape) for w in layer.trainable_weights)
    return ModelCost(name=model.name, layers=rows, bn_layers=bn_layers, bn_params=bn_params)


def count_arch(name, widths=None, **build_kwargs):
    """Builds zoo model ``name`` from ``widths`` and counts it (see :func:`count_model`)."""
    from nce_tf.sources import build_model

    return count_model(build_model(name, widths, **build_kwargs))
