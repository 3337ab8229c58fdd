"""Quantizers of nce-tf, resolvable by name.

Weight quantizers: ``"sawb"`` (default for 2 bits), ``"dorefa"``, ``"uniform"``
(per-channel) and ``"uniform_per_tensor"``.  Activation quantizer: ``"pact"``.

>>> import nce_tf
>>> nce_tf.quant.get_weight_quantizer("sawb", bits=2)
SAWB(bits=2)
>>> nce_tf.quant.get_weight_quantizer("sawb", bits=32) is None   # 32 bits = float
True
"""

import keras

from nce_tf import choices
from nce_tf.errors import UsageError
from nce_tf.quant.activations import PACT
from nce_tf.quant.base import (
    ALLOWED_BITS,
    FULL_PRECISION,
    Quantizer,
    check_bits,
    serialize,
)
from nce_tf.quant.weights import SAWB, DoReFa, Uniform

WEIGHT_QUANTIZERS = {
    "sawb": SAWB,
    "dorefa": DoReFa,
    "uniform": lambda bits: Uniform(bits, per_channel=True),
    "uniform_per_tensor": lambda bits: Uniform(bits, per_channel=False),
}
ACTIVATION_QUANTIZERS = {"pact": PACT}
assert tuple(WEIGHT_QUANTIZERS) == choices.WEIGHT_QUANTIZER_NAMES
assert tuple(ACTIVATION_QUANTIZERS) == choices.ACTIVATION_QUANTIZER_NAMES


def _by_name(table, kind, name, bits, **kwargs):
    if name not in table:
        raise UsageError(
            f"Unknown {kind} quantizer. Received: {kind}_quantizer={name!r}. "
            f"Allowed: {', '.join(sorted(table))}."
        )
    if check_bits(bits) == FULL_PRECISION:
        return None
    return table[name](bits, **kwargs)


def get_weight_quantizer(name, bits):
    """Weight quantizer ``name`` at ``bits``, or ``None`` for 32 bits."""
    return _by_name(WEIGHT_QUANTIZERS, "weight", name, bits)


def get_activation_quantizer(name, bits, **kwargs):
    """Activation quantizer ``name`` at ``bits`` (kwargs go to it), or ``None`` for 32 bits."""
    return _by_name(ACTIVATION_QUANTIZERS, "activation", name, bits, **kwargs)


def get(identifier):
    """Resolves a quantizer from an instance, a serialized dict, a name, or ``None``.

    A bare name gives the 2-bit quantizer of that name.
    """
    if identifier is None or isinstance(identifier, Quantizer):
        return identifier
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    if isinstance(identifier, str):
        if identifier in ACTIVATION_QUANTIZERS:
            return get_activation_quantizer(identifier, 2)
        return get_weight_quantizer(identifier, 2)
    raise UsageError(f"Cannot interpret a quantizer. Received: {identifier!r}")


__all__ = [
    "ALLOWED_BITS", "FULL_PRECISION", "PACT", "SAWB", "DoReFa", "Quantizer", "Uniform",
    "check_bits", "get", "get_activation_quantizer", "get_weight_quantizer", "serialize",
]
