"""Reading a user's Keras layer: the checks the ops' ``from_keras`` share, and the refusals.

A layer the adapter cannot read is a one-line :class:`~nce_tf.errors.UsageError` naming it
(``fail``); a layer type no op reads is refused with the reason :data:`REFUSALS` gives, else as
unknown (:func:`reader_of`).  The search needs square kernels, strides and pools (``square``),
channels-last undilated, ungrouped convs (``check_conv``).
"""

import keras
import numpy as np

from nce_tf.errors import UsageError
from nce_tf.search.ops.base import KERAS_OPS, keras_op

# Layer types no op reads, with why (none now: a Reshape is read between a flat vector and a
# (1, 1, C) map, and refused otherwise by its op).
REFUSALS = {}


def fail(ref, why):
    raise UsageError(f"adapt() cannot adapt layer {ref.name!r} ({ref.kind}): {why}.")


def reader_of(ref):
    """The op reading the user's layer ``ref`` (its exact type: a subclass may compute otherwise)."""
    op = keras_op(ref.layer, exact=True)
    if op is None:
        why = REFUSALS.get(type(ref.layer))
        fail(ref, why or "unknown layer type; supported: " + ", ".join(supported()))
    return op


def supported():
    """The names of the Keras layer types the adapter reads."""
    return sorted(t.__name__ for t in KERAS_OPS)


def square(ref, value, what):
    value = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    if len(set(value)) != 1:
        fail(ref, f"the search needs square {what}, received {what}={value}")
    return int(value[0])


# Conv settings neither the search nor the export computes: (attribute, the one value read, allowed).
# (A dilation is exported but not searched: ``check_conv`` adds it.)
CONV_SETTINGS = (("data_format", "channels_last", "'channels_last'"), ("groups", 1, "1"),
                 ("depth_multiplier", 1, "1"))


def unread_conv_settings(layer):
    """``(setting, allowed)`` for each of ``CONV_SETTINGS`` that ``layer`` sets otherwise, ``setting``
    as ``"name=value"`` (the search's and the export's refusals word their own line around it)."""
    for name, read, allowed in CONV_SETTINGS:
        value = getattr(layer, name, read)
        if value != read:
            yield f"{name}={value!r}", allowed


def check_conv(ref):
    """``(kernel, stride)`` of a conv the search can widen, else a one-line refusal."""
    layer = ref.layer
    for setting, allowed in unread_conv_settings(layer):
        fail(ref, f"received {setting}, allowed: {allowed}")
    if tuple(getattr(layer, "dilation_rate", (1, 1))) not in ((1, 1), (1,)):
        fail(ref, f"dilated convolutions are not supported, received dilation_rate={layer.dilation_rate}")
    return square(ref, layer.kernel_size, "kernel_size"), square(ref, layer.strides, "strides")


def bn_vector(layer, field):
    """A BatchNormalization's ``gamma``, ``beta``, ``moving_mean`` or ``moving_variance`` as numpy; a
    layer built with ``scale=False`` (``center=False``) computes with gamma 1 (beta 0), which it
    does not hold as a weight."""
    variable = getattr(layer, field)
    if variable is None:
        return np.full(layer.moving_mean.shape, 1.0 if field == "gamma" else 0.0, "float32")
    return variable.numpy()


def full_bn(layer):
    """A copy of the user's BatchNormalization ``layer`` that holds gamma and beta (a search trains
    both, whatever the user's ``scale`` / ``center``)."""
    return keras.layers.BatchNormalization.from_config({**layer.get_config(), "scale": True, "center": True})


def applies_softmax(layer):
    """Whether ``layer`` ends in a softmax (a ``Softmax`` layer, or a layer whose activation is one)."""
    activation = getattr(getattr(layer, "activation", None), "__name__", "")
    return isinstance(layer, keras.layers.Softmax) or activation == "softmax"


def area(shape):
    """H * W of an output shape without the batch axis (1 for a flat one)."""
    return int(shape[0]) * int(shape[1]) if len(shape) == 3 else 1
