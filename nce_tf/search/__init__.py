"""Channel search: the NCE super-net, its cost model, expansion, derivation and the search job.

- :mod:`~nce_tf.search.space`: a search space as a small graph (rows, nodes); the space of a
  model name is :func:`nce_tf.sources.build_space`;
- :mod:`~nce_tf.search.ops`: the ops of the graph, one class per kind (width rule, cost terms,
  super-net layer and forward, derived Keras layer);
- :mod:`~nce_tf.search.candidates`: candidate widths ``j * n / 8`` and the tables of each mode;
- :mod:`~nce_tf.search.layers`: ``SearchConv2D`` (2X kernel, per-candidate BN, CWI merge), ``SearchDense``;
- :mod:`~nce_tf.search.cost_model`: expected / exact MACs and PARAMs, TAS's constraint loss;
- :mod:`~nce_tf.search.units`: the cost units (MACs, PARAMs, weight memory and BOPs at the policy's
  bits), one class each in a registry, their budgets (``UnitBudget``) and the search's ``Budget``;
- :mod:`~nce_tf.search.supernet`: ``SuperNet`` (a ``keras.Model`` with the bi-level ``train_step``);
- :mod:`~nce_tf.search.expansion`: NCE's channel expansion rule;
- :mod:`~nce_tf.search.methods`: the search methods (``--mode``), one class each in a registry;
- :mod:`~nce_tf.search.baselines`: the ``random`` and ``wrpn`` width assignments;

The search job behind ``tools/search.py`` is :func:`nce_tf.jobs.search.run_search`.
"""

from nce_tf.search.candidates import candidate_widths, search_table
from nce_tf.search.config import SearchConfig
from nce_tf.search.methods import METHODS, SearchMethod, register_method


def __getattr__(name):
    # TensorFlow-heavy parts load on first use, so flag validation stays fast.
    import importlib

    homes = {"SuperNet": "supernet", "Budget": "units", "CostModel": "cost_model",
             "SearchConv2D": "layers", "SearchDense": "layers", "expand": "expansion",
             "derive_widths": "derive", "SearchSpace": "space", "Unit": "units", "UnitBudget": "units"}
    if name in homes:
        return getattr(importlib.import_module(f"nce_tf.search.{homes[name]}"), name)
    raise AttributeError(f"module 'nce_tf.search' has no attribute {name!r}")


__all__ = ["METHODS", "SearchConfig", "SearchMethod", "register_method", "SearchSpace", "candidate_widths", "search_table",
           "SuperNet", "Budget", "CostModel", "SearchConv2D", "SearchDense", "expand",
           "derive_widths", "Unit", "UnitBudget"]
