"""A quantized layer's kernel as integers on its grid: ``w_q = ints * step``.

Every weight quantizer of nce-tf produces values on a uniform grid:

- zero-free grids (SAWB, DoReFa), ``2^b`` levels: ``w_q = step * ints`` with ``ints`` odd in
  ``[-(2^b - 1), 2^b - 1]`` and ``step`` half the level spacing (SAWB: ``a / (2^b - 1)``; DoReFa:
  ``1 / (2^b - 1)``).  At 2 bits: ``ints`` in ``{-3, -1, 1, 3}``;
- the symmetric narrow grid (``uniform``), ``2^b - 1`` levels: ``ints`` in
  ``[-(2^(b-1) - 1), 2^(b-1) - 1]``, ``step`` per output channel or per tensor.

``ints`` fit int8 for ``b <= 7`` (zero-free) and ``b <= 8`` (narrow): the exporter keeps the
same step on an int8 grid, so TFLite's int8 kernels hold exactly these integers, and the
packed 2-bit file stores their codes (``(ints + 2^b - 1) / 2`` or ``ints + 2^(b-1) - 1``).
An 8-bit zero-free grid (up to 255 steps) does not fit: the exporter quantizes such a channel
the ordinary max-abs way (:func:`nce_tf.export.tflite_graph._folded`).
"""

import dataclasses

import numpy as np

from nce_tf.errors import UsageError
from nce_tf.quant.base import channels_last


@dataclasses.dataclass
class IntegerGrid:
    """``values = ints * step`` (``step`` broadcasts over the output axes when per channel: a conv's
    or dense layer's last, a depthwise conv's last two, ``[C, M]``)."""

    ints: np.ndarray
    step: np.ndarray
    kind: str  # "zero_free" | "narrow"
    bits: int

    @property
    def codes(self):
        """Non-negative codes ``0..2^b - 1`` of ``ints``."""
        if self.kind == "zero_free":
            return ((self.ints + (2**self.bits - 1)) // 2).astype("uint8")
        return (self.ints + (2 ** (self.bits - 1) - 1)).astype("uint8")

    def values(self):
        return (self.ints * self.step).astype("float32")


def integer_grid(layer):
    """The :class:`IntegerGrid` of a ``QuantConv2D`` / ``QuantDense`` with a weight quantizer (its
    step and kind from the quantizer: ``Quantizer.grid_step``)."""
    q = layer.kernel_quantizer
    wq = layer.quantized_kernel().numpy()
    channel_axes = getattr(layer, "channel_axes", 1)
    grid = q.grid_step(channels_last(layer.kernel, channel_axes))
    if grid is None:
        raise UsageError(f"No integer grid for this weight quantizer. Received: {q!r} in layer {layer.name!r}.")
    step, kind = grid
    if np.ndim(step):  # per channel: over the kernel's output axes (a depthwise conv's [C, M])
        step = np.reshape(step, wq.shape[wq.ndim - channel_axes:])
    ints = np.round(wq / step).astype("int32")
    # A zero-free level is computed as -a + k 2a / (2^b - 1) in float32: near zero it is off by a few
    # ulps of a, not of itself (1.5e-5 relative at 8 bits), so the bound is on the largest level.
    if not np.allclose(ints * step, wq, rtol=0, atol=8 * np.finfo(np.float32).eps * float(np.max(np.abs(wq)))):
        raise AssertionError(f"{layer.name}: quantized kernel is not on its grid")
    return IntegerGrid(ints=ints, step=np.asarray(step, "float32"), kind=kind, bits=q.bits)
