"""nce-tf: Neural Channel Expansion for ultra-low uniform-precision quantization, on Keras 3.

Sub-packages (imported on first use, so ``import nce_tf`` stays cheap for the tools):

- :mod:`nce_tf.quant`: quantizers (PACT, SAWB, DoReFa, uniform), resolvable by name;
- :mod:`nce_tf.layers`: ``QuantConv2D``, ``QuantDense``, ``QuantActivation``;
- :mod:`nce_tf.models`: the model zoo built from per-layer width lists (``build_model``);
- :mod:`nce_tf.cost`: exact MACs / parameter counts and a per-layer summary table;
- :mod:`nce_tf.data`: tf.data pipelines (synthetic, npz, CIFAR-10, ImageNet);
- :mod:`nce_tf.train`: the training's parts (``TrainConfig``, float initialisation, distillation);
- :mod:`nce_tf.jobs`: what the tools run on one lifecycle: ``run_training`` (``nce-tf train``), ``run_search``;
- :mod:`nce_tf.search`: the NCE super-net, bi-level search, expansion and derivation (``nce-tf search``);
- :mod:`nce_tf.pipeline`: search + final training + report (``nce-tf nce``);
- :mod:`nce_tf.export`: ``.keras``, SavedModel, int8 TFLite and packed 2-bit weights (``nce-tf export``);
- :mod:`nce_tf.adapter`: ``nce_tf.adapt(model)`` turns a user's Keras CNN into a search space;
  ``nce_tf.derive_model`` gives its derived network;
- :mod:`nce_tf.compression`: ``nce_tf.compress(model, train, validation, budget=...)`` compresses a trained
  network to a budget (``nce-tf compress``): searched or L1-pruned widths, inherited weights, distilled
  fine-tuning, export, report;
- :mod:`nce_tf.commands`: the ``nce-tf`` command, a subcommand per tool (``tools/*.py`` in a checkout);
  :mod:`nce_tf.cli`: how every tool starts (flags from the configs, ``--flagfile`` by path or preset name).

Example:

>>> import nce_tf
>>> policy = nce_tf.models.QuantPolicy(w_bits=2, a_bits=2)
>>> model = nce_tf.models.build_model("resnet20", policy=policy)
>>> nce_tf.cost.count_model(model).macs
40813184
"""

import importlib

from nce_tf.errors import UsageError

__version__ = "0.1.0"

_SUBPACKAGES = ("adapter", "arch", "cost", "data", "export", "jobs", "layers", "models", "pipeline", "quant", "search",
                "train")
_FUNCTIONS = {"adapt": "nce_tf.adapter", "derive_model": "nce_tf.adapter", "compress": "nce_tf.compression"}


def __getattr__(name):
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(_FUNCTIONS[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"nce_tf.{name}")
    raise AttributeError(f"module 'nce_tf' has no attribute {name!r}")


__all__ = ["UsageError", "__version__", "adapt", "compress", "derive_model", *_SUBPACKAGES]
