"""The allowed values of nce-tf's settings, importable without TensorFlow.

Tools validate every flag against these before any heavy import, so a typo costs a
fraction of a second; the quantizer and model registries check they agree with them.  The dataset
names and their check are :mod:`nce_tf.data.registry`'s (one class per dataset), also TF-free.
"""

from nce_tf.errors import UsageError

FULL_PRECISION = 32
QUANT_BITS = tuple(range(2, 9))
ALLOWED_BITS = QUANT_BITS + (FULL_PRECISION,)
FLOAT_BITS = (8, 16, 32)  # what memory and BOPs count a full-precision layer at (nce_tf.search.units)
WEIGHT_QUANTIZER_NAMES = ("sawb", "dorefa", "uniform", "uniform_per_tensor")
ACTIVATION_QUANTIZER_NAMES = ("pact",)
# Keras dtype policies a run may compute under (nce_tf.mixed_precision); float32 first: the default.
MIXED_PRECISION = ("float32", "mixed_float16", "mixed_bfloat16")


def check_bits(bits, name="bits", allow_full_precision=True):
    """Returns ``bits`` as an int, or raises a one-line :class:`UsageError`."""
    allowed = ALLOWED_BITS if allow_full_precision else QUANT_BITS
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in allowed:
        text = "2..8 or 32 (= full precision)" if allow_full_precision else "2..8"
        raise UsageError(f"Invalid bit width. Received: {name}={bits!r}. Allowed: {text}.")
    return bits


def check_choice(value, name, allowed):
    """Returns ``value`` if it is in ``allowed``, else raises a one-line error."""
    if value not in allowed:
        raise UsageError(f"Invalid {name}. Received: {name}={value!r}. Allowed: {', '.join(allowed)}.")
    return value


def check_mixed_precision(value):
    """Returns ``value`` if it names a policy of :data:`MIXED_PRECISION`, else raises a one-line error."""
    return check_choice(value, "mixed_precision", MIXED_PRECISION)
