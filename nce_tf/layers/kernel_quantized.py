"""``KernelQuantized``: the plumbing shared by layers whose kernel is fake-quantized.

Mixed in before a Keras layer class that owns a ``kernel`` (``Conv2D``, ``Dense``): it
takes the ``kernel_quantizer`` argument, builds the quantizer's state on the layer after
the layer has built its kernel, exposes ``quantized_kernel()`` (what the layer computes
with; the exporter reads it too) and serializes the quantizer in ``get_config``.

**Mixed precision.**  Under ``mixed_float16`` / ``mixed_bfloat16`` Keras keeps variables in float32
and casts them to the compute dtype when a layer reads them (autocast).  A quantized kernel is
instead created with ``autocast=False`` and read in float32: the quantizer sees the float32
shadow weights, so its clip and every weight's bin are those of a float32 run (a kernel rounded
to bfloat16 first would move SAWB's clip and flip weights near a bin edge), and only the
quantized kernel is cast to the compute dtype.  A float kernel is autocast as Keras does it.
"""

import keras

from nce_tf import quant


class KernelQuantized:
    """Mixin: ``class QuantX(KernelQuantized, keras.layers.X)``."""

    # How many trailing kernel axes hold the output channels (a depthwise conv's ``C x M``): a
    # per-channel quantizer scales each of them (nce_tf.quant.base.channels_last).
    channel_axes = 1

    def __init__(self, *args, kernel_quantizer=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.kernel_quantizer = quant.get(kernel_quantizer)

    def add_weight(self, *args, **kwargs):
        # The Keras layer creates its kernel through this public method: a quantized one is read in
        # float32 whatever the policy (module doc, "Mixed precision").
        if kwargs.get("name") == "kernel" and getattr(self, "kernel_quantizer", None) is not None:
            kwargs.setdefault("autocast", False)
        return super().add_weight(*args, **kwargs)

    def build(self, input_shape):
        super().build(input_shape)
        self._quantizer_weights = (
            self.kernel_quantizer.build(quant.base.channels_last(self.kernel, self.channel_axes).shape, self)
            if self.kernel_quantizer else {}
        )

    def quantize_kernel(self, kernel):
        """``kernel`` fake-quantized (unchanged when the layer is float), in the layer's compute dtype."""
        if self.kernel_quantizer is not None:
            kernel = quant.base.quantize_channels_last(self.kernel_quantizer, kernel, self._quantizer_weights,
                                                       self.channel_axes)
        return keras.ops.cast(kernel, self.compute_dtype)

    def quantized_kernel(self):
        """The kernel as the layer computes with it (float values on the grid)."""
        return self.quantize_kernel(self.kernel)

    def get_config(self):
        return {**super().get_config(), "kernel_quantizer": quant.serialize(self.kernel_quantizer)}
