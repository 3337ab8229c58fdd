"""nce_tf.export.grid: a quantized kernel read back as integers on its grid, at every bit width."""

import numpy as np
import pytest
import tensorflow as tf

from nce_tf.export.grid import integer_grid
from nce_tf.layers import QuantConv2D
from nce_tf.quant import SAWB, DoReFa, Uniform


@pytest.mark.parametrize("quantizer", [SAWB(bits=2), SAWB(bits=4), SAWB(bits=8), DoReFa(bits=8),
                                       Uniform(bits=8)], ids=lambda q: f"{type(q).__name__}{q.bits}")
def test_every_kernel_reads_back_as_integers_on_its_grid(quantizer):
    # At 8 bits SAWB's levels near zero come out of -a + k 2a / 255 in float32, off by a few ulps of a:
    # the check that the kernel is on its grid must allow that, and no more than a sliver of a step.
    layer = QuantConv2D(32, 3, kernel_quantizer=quantizer)
    layer.build((None, 8, 8, 16))
    rng = np.random.default_rng(0)
    for scale in (0.05, 0.3, 1.0):
        layer.kernel.assign(rng.normal(0.0, scale, layer.kernel.shape).astype("float32"))
        g = integer_grid(layer)
        wq = layer.quantized_kernel().numpy()
        # Independently: the nearest multiple of the step is the integer, and it is in range.
        top = 2**quantizer.bits - 1 if g.kind == "zero_free" else 2 ** (quantizer.bits - 1) - 1
        assert np.abs(g.ints).max() <= top
        if g.kind == "zero_free":
            assert np.all(g.ints % 2 != 0)  # odd multiples of half the spacing: no zero level
        np.testing.assert_array_equal(g.ints, np.round(wq / g.step))
        assert np.abs(g.values() - wq).max() <= 1e-6 * np.abs(wq).max()


def test_a_kernel_off_its_grid_is_refused(monkeypatch):
    layer = QuantConv2D(8, 3, kernel_quantizer=SAWB(bits=8))
    layer.build((None, 8, 8, 4))
    wq = layer.quantized_kernel().numpy()
    step, _ = layer.kernel_quantizer.grid_step(layer.kernel)
    off = wq.copy()
    off.flat[0] += 0.01 * step  # a hundredth of a step: no longer on the grid
    monkeypatch.setattr(layer, "quantized_kernel", lambda: tf.constant(off))
    with pytest.raises(AssertionError, match="not on its grid"):
        integer_grid(layer)
