"""BOPs: per layer, MACs x its weight bits x the bits of its input (:mod:`nce_tf.search.units.bits`);
``--bops`` (``80M``) or ``--bops_ratio``.

Example (ResNet-8 W2A2: the first conv sees the 8-bit image, the body 2-bit weights and inputs):

>>> from nce_tf.models import QuantPolicy
>>> from nce_tf.sources import build_space
>>> space = build_space("resnet8")
>>> Bops(QuantPolicy(w_bits=2, a_bits=2), float_bits=8).original(space)
92315648
"""

from nce_tf.search.units.base import Coefficients, register_unit
from nce_tf.search.units.bits import BitsUnit, column


@register_unit
class Bops(BitsUnit):
    """Bit operations of one forward pass of one image."""

    name, ratio_key, label = "bops", "bops_ratio", "BOPs"
    ratio_field, tolerance_field, lambda_field = "bops_ratio", "bops_tolerance", "lambda_bops"
    flag, symbol = "bops", "BOPs"

    def terms(self, space):
        w, a, terms = self.weight_bits, self.input_bits(space), space.terms
        shortcut = w("shortcut")
        return Coefficients(
            column(m * w(role) * a[src] for _, _, m, _, role, src in terms.bi),
            column(m * w(role) * a[src] for _, m, _, _, role, src in terms.lin),
            column(hw * shortcut * a[src] for _, _, hw, src in terms.proj), column(0 for _ in terms.proj), 0)
