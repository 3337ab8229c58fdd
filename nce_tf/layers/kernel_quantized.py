"""``KernelQuantized``: the plumbing shared by layers whose kernel is fake-quantized.

Mixed in before a Keras layer class that owns a ``kernel`` (``Conv2D``, ``Dense``): it
takes the ``kernel_quantizer`` argument, builds the quantizer's state on the layer after
the layer has built its kernel, exposes ``quantized_kernel()`` (what the layer computes
with; the exporter reads it too) and serializes the quantizer in ``get_config``.
"""

from nce_tf import quant


class KernelQuantized:
    """Mixin: ``class QuantX(KernelQuantized, keras.layers.X)``."""

    def __init__(self, *args, kernel_quantizer=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.kernel_quantizer = quant.get(kernel_quantizer)

    def build(self, input_shape):
        super().build(input_shape)
        self._quantizer_weights = (
            self.kernel_quantizer.build(self.kernel.shape, self) if self.kernel_quantizer else {}
        )

    def quantize_kernel(self, kernel):
        """``kernel`` fake-quantized (unchanged when the layer is float)."""
        if self.kernel_quantizer is None:
            return kernel
        return self.kernel_quantizer(kernel, self._quantizer_weights)

    def quantized_kernel(self):
        """The kernel as the layer computes with it (float values on the grid)."""
        return self.quantize_kernel(self.kernel)

    def get_config(self):
        return {**super().get_config(), "kernel_quantizer": quant.serialize(self.kernel_quantizer)}
