"""Cost units and budgets: MACs, PARAMs, weight memory and BOPs, one class each, in one registry.

- :mod:`~nce_tf.search.units.base`: :class:`Unit` (what a unit owns: its coefficients on the space's
  cost terms, its budget from the config, its record fields), :class:`UnitBudget` (one unit's band
  and coefficient), :class:`Coefficients`, the registry :data:`UNITS` and :func:`register_unit`;
- :mod:`~nce_tf.search.units.macs`, :mod:`~nce_tf.search.units.params`: MACs (a band around the
  target) and PARAMs (a ceiling), relative to the original network;
- :mod:`~nce_tf.search.units.bits`, :mod:`~nce_tf.search.units.memory`, :mod:`~nce_tf.search.units.bops`:
  weight memory in bytes and BOPs at the quantization policy's bits (a band below a target);
- :mod:`~nce_tf.search.units.budget`: :class:`Budget`, the units a search counts and the entries
  its config sets; the constraint loss, the search log, the derivation and ``arch.json`` iterate them.

Adding a unit is one :class:`Unit` subclass decorated with :func:`register_unit` (and its test); a
unit set from flags reads its own :class:`~nce_tf.search.SearchConfig` fields (settings that change a
search's result are fields of the config, recorded in ``search_config.json``).  Importable without
TensorFlow.

Example (a unit's exact cost, and a budget set by the config):

>>> from nce_tf.models import QuantPolicy
>>> from nce_tf.search.config import SearchConfig
>>> from nce_tf.sources import build_space
>>> space = build_space("resnet8")
>>> config = SearchConfig(memory_ratio="0.5", memory_tolerance=0.25)
>>> budget = Budget.from_config(space, config, QuantPolicy(w_bits=2, a_bits=2))
>>> budget.costs(space, space.default_widths())
{'macs': 12501632, 'params': 78042, 'memory_bytes': 24792.0, 'bops': 92315648}
>>> budget.entry("memory_bytes").limits()
(9297.0, 12396.0)
"""

from nce_tf.search.units.base import UNITS, Coefficients, Unit, UnitBudget, register_unit
from nce_tf.search.units.macs import Macs
from nce_tf.search.units.params import Params
from nce_tf.search.units.memory import WeightMemory  # noqa: I001  (registration order: the log's order)
from nce_tf.search.units.bops import Bops
from nce_tf.search.units.budget import Budget

__all__ = ["UNITS", "Coefficients", "Unit", "UnitBudget", "register_unit", "Macs", "Params", "WeightMemory", "Bops",
           "Budget"]
