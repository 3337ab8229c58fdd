"""Weight memory in bytes: every kernel weight at its deployed bits, BN and biases at 32 bits
(:mod:`nce_tf.search.units.bits`); ``--memory_bytes`` (``64Ki``) or ``--memory_ratio``.

Example (ResNet-8 W2A2, the float layers at the int8 TFLite file's 8 bits):

>>> from nce_tf.models import QuantPolicy
>>> from nce_tf.sources import build_space
>>> space = build_space("resnet8")
>>> WeightMemory(QuantPolicy(w_bits=2, a_bits=2), float_bits=8).original(space)
24792.0
"""

from nce_tf.search.units.base import Coefficients, register_unit
from nce_tf.search.units.bits import AUX_BITS, BitsUnit, column


@register_unit
class WeightMemory(BitsUnit):
    """Bytes of the derived network's weights as deployed (a device's memory: a budget is usually a ceiling)."""

    name, ratio_key, label = "memory_bytes", "memory_ratio", "memory"
    scale, suffix, digits = 1e3, "kB", 1
    ratio_field, tolerance_field, lambda_field = "memory_ratio", "memory_tolerance", "lambda_memory"
    flag, symbol = "memory", "bytes"

    def terms(self, space):
        w, terms = self.weight_bits, space.terms
        shortcut = w("shortcut")  # a projection the derived network inserts is a shortcut conv
        return Coefficients(
            column(p * w(role) for _, _, _, p, role, _ in terms.bi),
            column(k * w(role) + (p - k) * AUX_BITS for _, _, p, k, role, _ in terms.lin),
            column(shortcut for _ in terms.proj), column(2 * AUX_BITS for _ in terms.proj),
            space.const_params * AUX_BITS, scale=1 / 8)
