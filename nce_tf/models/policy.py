"""Which layers of a network are quantized, and how: the ``QuantPolicy``.

The paper's rule (section 5.1, following PACT and QIL): the first conv, the last dense
layer and the shortcut (projection) convs keep float weights; every other conv gets a
``w_bits`` weight quantizer, and every ReLU becomes a PACT activation at ``a_bits``
(a plain ReLU when ``a_bits == 32``).  BatchNorm stays float.  The network input (the
image) is never quantized.  ``quantize_first`` / ``quantize_last`` / ``quantize_shortcut``
switch the exceptions off.

Example:

>>> from nce_tf.models import QuantPolicy
>>> p = QuantPolicy(w_bits=2, a_bits=2)
>>> p.weight_bits("body"), p.weight_bits("first"), p.weight_bits("shortcut")
(2, 32, 32)
"""

import dataclasses

from nce_tf import choices
from nce_tf.errors import UsageError

ROLES = ("first", "body", "shortcut", "last")


@dataclasses.dataclass(frozen=True)
class QuantPolicy:
    """Quantization settings of a zoo model.

    Args:
        w_bits: weight bits of quantized layers, 2..8 or 32 (float).
        a_bits: activation bits at every PACT site, 2..8 or 32 (plain ReLU).
        weight_quantizer: ``sawb`` | ``dorefa`` | ``uniform`` | ``uniform_per_tensor``.
        activation_quantizer: ``pact``.
        pact_alpha_init: initial PACT clip.
        pact_alpha_l2: L2 coefficient on each PACT clip (paper: 1e-3).
        quantize_first: quantize the first conv's weights too.
        quantize_last: quantize the classifier's weights too.
        quantize_shortcut: quantize the shortcut convs' weights too.
    """

    w_bits: int = 32
    a_bits: int = 32
    weight_quantizer: str = "sawb"
    activation_quantizer: str = "pact"
    pact_alpha_init: float = 4.0
    pact_alpha_l2: float = 1e-3
    quantize_first: bool = False
    quantize_last: bool = False
    quantize_shortcut: bool = False

    def __post_init__(self):
        choices.check_bits(self.w_bits, "w_bits")
        choices.check_bits(self.a_bits, "a_bits")
        choices.check_choice(self.weight_quantizer, "weight_quantizer", choices.WEIGHT_QUANTIZER_NAMES)
        choices.check_choice(self.activation_quantizer, "activation_quantizer",
                             choices.ACTIVATION_QUANTIZER_NAMES)
        if not self.pact_alpha_init > 0:
            raise UsageError(f"Invalid pact_alpha_init. Received: {self.pact_alpha_init!r}. Allowed: > 0.")
        if not self.pact_alpha_l2 >= 0:
            raise UsageError(f"Invalid pact_alpha_l2. Received: {self.pact_alpha_l2!r}. Allowed: >= 0.")

    def _pact_kwargs(self):
        return {"alpha_init": self.pact_alpha_init, "alpha_l2": self.pact_alpha_l2}

    def weight_bits(self, role):
        """Weight bit width of a layer with ``role`` in ``ROLES``."""
        if role not in ROLES:
            raise UsageError(f"Unknown layer role. Received: role={role!r}. Allowed: {ROLES}.")
        exempt = {"first": not self.quantize_first, "last": not self.quantize_last,
                  "shortcut": not self.quantize_shortcut}.get(role, False)
        return choices.FULL_PRECISION if exempt else self.w_bits

    def kernel_quantizer(self, role):
        """A fresh weight quantizer for a layer with ``role`` (``None`` = float)."""
        # quantizers and layers load Keras: a policy is a TF-free settings object until it builds one
        from nce_tf import quant

        return quant.get_weight_quantizer(self.weight_quantizer, self.weight_bits(role))

    def activation(self, name, max_value=None, **layer_kwargs):
        """A fresh activation layer: PACT at ``a_bits``, or ReLU at 32 bits (capped at ``max_value``:
        a user's ReLU6 stays ReLU6 in float; PACT learns its own clip); ``layer_kwargs`` (a Keras
        layer's base arguments, e.g. ``activity_regularizer``) go to the layer."""
        # quantizers and layers load Keras: a policy is a TF-free settings object until it builds one
        import keras

        from nce_tf import layers, quant

        q = quant.get_activation_quantizer(
            self.activation_quantizer, self.a_bits, **self._pact_kwargs()
        )
        if q is None:
            return keras.layers.ReLU(max_value=max_value, name=name, **layer_kwargs)
        return layers.QuantActivation(q, name=name, **layer_kwargs)

    def to_dict(self):
        return dataclasses.asdict(self)
