"""Shared building blocks of the zoo: quantization-aware conv + BN, residual shortcuts.

Every zoo model is a Keras functional model whose searchable convs take their output
width from a per-layer width list.  The helpers here keep the conventions in one place:

- convs have no bias (BN follows) and are initialised Kaiming-normal, fan-out (as TAS);
- BN uses PyTorch's momentum 0.1 (Keras 0.9) and epsilon 1e-5, the paper's framework, and
  is synchronized across replicas (global-batch statistics; see ``bn``);
- weight decay is coupled L2 on conv and dense kernels (``wd / 2 * ||w||^2`` in the loss,
  i.e. ``wd * w`` added to the gradient as PyTorch's SGD does);
- the shortcut of a residual block is the identity when the block keeps its width and
  resolution, else a projection: ``AvgPool(2) + 1x1 conv + BN`` for the TAS CIFAR
  form, ``1x1 conv(stride) + BN`` for the ImageNet form.  The TAS search net also
  gives the pooled shortcut a BN; we keep it in the final net too, so the two agree.
"""

import keras

from nce_tf.layers import QuantConv2D, QuantDense



# One initializer object per layer, made when the layer is: a Keras 3 initializer built without a
# seed fixes an integer seed at construction, so a module-level object shared by every conv gave
# every conv of one shape the same initial kernel, and its seed, drawn at import time, ignored
# ``keras.utils.set_random_seed`` (training was not reproducible from ``--seed``).
def _conv_init():
    return keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="untruncated_normal")


def _fc_init():
    return keras.initializers.RandomNormal(stddev=0.01)


class Builder:
    """Creates the layers of one model under a ``QuantPolicy`` and a weight decay.

    Args:
        policy: a :class:`nce_tf.models.QuantPolicy`.
        weight_decay: coupled L2 weight decay of conv and dense kernels.
    """

    def __init__(self, policy, weight_decay=0.0):
        self.policy = policy
        self.weight_decay = float(weight_decay)

    def _regularizer(self):
        return keras.regularizers.L2(self.weight_decay / 2.0) if self.weight_decay else None

    def conv(self, x, filters, kernel_size, stride, name, role="body"):
        return QuantConv2D(
            filters, kernel_size, strides=stride, padding="same", use_bias=False,
            kernel_initializer=_conv_init(), kernel_regularizer=self._regularizer(),
            kernel_quantizer=self.policy.kernel_quantizer(role), name=name,
        )(x)

    def bn(self, x, name):
        # synchronized: under tf.distribute the batch statistics are those of the global
        # batch, so N replicas train exactly like one device (a no-op on one device).
        return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, synchronized=True, name=name)(x)

    def act(self, x, name):
        return self.policy.activation(name)(x)

    def conv_bn(self, x, filters, kernel_size, stride, prefix, role="body", act=True):
        """conv -> BN (-> activation); layers named ``{prefix}_conv/_bn/_act``."""
        x = self.conv(x, filters, kernel_size, stride, f"{prefix}_conv", role)
        x = self.bn(x, f"{prefix}_bn")
        return self.act(x, f"{prefix}_act") if act else x

    def shortcut(self, x, in_width, out_width, stride, prefix, pooled, keep_conv=False):
        """Identity, or the projection that matches width and resolution (always the
        projection with ``keep_conv``)."""
        if stride == 1 and in_width == out_width and not keep_conv:
            return x
        if pooled and stride != 1:
            x = keras.layers.AveragePooling2D(stride, name=f"{prefix}_pool")(x)
            stride = 1
        x = self.conv(x, out_width, 1, stride, f"{prefix}_conv", role="shortcut")
        return self.bn(x, f"{prefix}_bn")

    def classifier(self, x, num_classes):
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        return QuantDense(
            num_classes, kernel_initializer=_fc_init(), kernel_regularizer=self._regularizer(),
            kernel_quantizer=self.policy.kernel_quantizer("last"), name="classifier",
        )(x)
