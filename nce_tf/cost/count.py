"""Exact MACs and parameter counts of a built Keras model.

Conventions (they reproduce the NCE paper's FLOPs/PARAMs columns, which follow TAS):

- **MACs** ("FLOPs" in the paper) are the multiply-accumulates of convolutions and dense
  layers only: ``k_h * k_w * (C_in / groups) * C_out * H_out * W_out`` for a conv,
  ``k_h * k_w * C_in * multiplier * H_out * W_out`` for a depthwise conv, and
  ``C_in * C_out`` per position for a dense layer.  No bias, BN, pooling or activation terms.
- **Parameters** are conv/dense kernels and biases plus BatchNorm's gamma and beta.  BN's
  moving statistics and PACT's clip values are state, not parameters, and are not counted.
- **Weight memory** stores each kernel at its layer's weight bit width and everything
  else (biases, BN) as float32.  ``float_bits`` sets what a kernel the model keeps at 32
  bits (float) counts at: 32 by default, 8 as the int8 TFLite file deploys it (the search's
  memory budgets count that way: :mod:`nce_tf.search.units`).
- **BOPs** are MACs x the layer's weight bits (as in memory) x the bits of its input
  activations: a PACT activation's bits where the input holds only its levels (through max
  pools, flatten, dropout and concatenations of them), ``float_bits`` elsewhere (the image,
  average pools, residual sums, float ReLUs).

Each layer's op (:func:`nce_tf.search.ops.keras_op`, the registry the adapter reads with) reports
its cost (``Op.keras_cost``) and its output's bits (``Op.keras_bits``); layers no op reads cost nothing.

Example:

>>> import nce_tf
>>> cost = nce_tf.cost.count_arch("resnet20")
>>> cost.macs, cost.params
(40813184, 272474)
"""

import dataclasses

import keras

from nce_tf import quant
from nce_tf.search.ops import keras_op

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
    w_bits: int  # the bits its kernel is counted at
    macs: int
    params: int
    memory_bytes: float
    a_bits: int = 0  # the bits of its input activations
    bops: int = 0

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

    @property
    def bops(self):
        return sum(layer.bops for layer in self.layers)

    def to_dict(self):
        return {
            "model": self.name, "macs": self.macs, "params": self.params,
            "memory_bytes": self.memory_bytes, "float_memory_bytes": self.float_memory_bytes, "bops": self.bops,
            "bn_layers": self.bn_layers, "bn_params": self.bn_params,
            "layers": [layer.to_dict() for layer in self.layers],
        }


class _Count:
    """The rows of one count: each layer's op reports its cost here (``Op.keras_cost``), and says
    what bits its output values have (``Op.keras_bits``: the input bits of the layers reading it).

    ``input_bits(layer)``: ``float_bits`` if any input is off a PACT grid, else the largest grid's bits.
    """

    def __init__(self, layers, float_bits):
        self.producer = {id(layer.output): layer for layer in layers if not isinstance(layer, keras.Model)}
        self.float_bits = float_bits
        self.rows, self.bn_layers, self.bn_params = [], 0, 0

    def input_bits(self, layer):
        tensors = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        bits = [self._tensor_bits(t) for t in tensors]
        return self.float_bits if self.float_bits in bits else max(bits)

    def _tensor_bits(self, tensor):
        layer = self.producer.get(id(tensor))
        op = keras_op(layer)
        return self.float_bits if op is None else op.keras_bits(layer, self)

    def weighted(self, layer, kind, cin, cout, kernel, macs, kernel_params, bias_params):
        """One conv or dense layer: ``macs`` MACs, its kernel at its weight bits, its bias float32."""
        q = getattr(layer, "kernel_quantizer", None)
        w_bits = q.bits if q is not None and q.bits < _FLOAT_BITS else self.float_bits
        a_bits = self.input_bits(layer)
        size = "x".join(str(d) for d in layer.output.shape[1:-1]) or "-"
        self.rows.append(LayerCost(
            name=layer.name, kind=kind, in_channels=int(cin), out_channels=int(cout), kernel=kernel,
            output_size=size, w_bits=w_bits, macs=int(macs), params=int(kernel_params + bias_params),
            memory_bytes=kernel_params * w_bits / 8 + bias_params * 4, a_bits=a_bits, bops=int(macs) * w_bits * a_bits))

    def bn(self, params):
        """A BatchNormalization's ``params`` (gamma and beta), in the summary row."""
        self.bn_layers += 1
        self.bn_params += params


def _walk(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _walk(layer)
        else:
            yield layer


def count_model(model, float_bits=_FLOAT_BITS):
    """Counts MACs, parameters, weight memory and BOPs of a built Keras model.

    Args:
        model: a built functional or Sequential ``keras.Model`` (nested models are walked).
        float_bits: the bits a float kernel, the image and activations off a PACT grid count at
            in memory and BOPs (32 = as the model holds them; 8 = as the int8 TFLite file does).

    Returns:
        A :class:`ModelCost` with one row per conv/dense layer.
    """
    layers = list(_walk(model))
    count = _Count(layers, float_bits)
    for layer in layers:
        op = keras_op(layer)
        if op is not None:
            op.keras_cost(layer, count)
    return ModelCost(name=model.name, layers=count.rows, bn_layers=count.bn_layers, bn_params=count.bn_params)


def count_arch(name, widths=None, float_bits=_FLOAT_BITS, **build_kwargs):
    """Builds zoo model ``name`` from ``widths`` and counts it (see :func:`count_model`)."""
    # nce_tf.sources sits above this package: reached lazily, to resolve a model name (WORKSPACE.md)
    from nce_tf.sources import build_model

    return count_model(build_model(name, widths, **build_kwargs), float_bits)
