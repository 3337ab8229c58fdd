"""``CompressConfig``: what ``nce-tf compress`` adds to the training and search settings, validated
without importing TensorFlow.

A compression reads three configs: the :class:`~nce_tf.train.TrainConfig` (data, bits, seed and the
fine-tuning's schedule and distillation), the :class:`~nce_tf.search.SearchConfig` (the budget and,
for ``method="nce"``, the search) and this one (the trained network, the method, the BN re-estimation).
The tool defines one absl flag per field of all three; :data:`TOOL_DEFAULTS` are the defaults a
compression takes where they differ from a training's or a search's (a fine-tuning is short and
gentle, distillation is on, the budget is empty until one is given).

**The budget** is a set of ceilings on the compressed network's exact cost (counted on the built
Keras model as :func:`nce_tf.cost.count_model` counts it, memory and BOPs at ``float_bits``):
``flops_ratio`` and ``params_ratio`` (fractions of the original's MACs and PARAMs; 0 = none),
``memory_bytes`` / ``memory_ratio`` and ``bops`` / ``bops_ratio`` (empty = none).  At least one
must be set, and each one set must lie below the original's cost: a budget at or above it leaves
nothing to compress (:func:`check_budget_settings`).

Example:

>>> CompressConfig(trained="runs/float", method="l1_uniform").validate().method
'l1_uniform'
>>> check_budget_settings(SearchConfig(flops_ratio=1.0, params_ratio=0.0))
Traceback (most recent call last):
...
nce_tf.errors.UsageError: Invalid flops_ratio. Received: flops_ratio=1.0. Allowed: 0 < flops_ratio < 1 (a ceiling below the original's MACs), or 0 for none.
"""

import dataclasses
import json
import zipfile

from nce_tf.errors import UsageError
from nce_tf.search.config import SearchConfig
from nce_tf.train.float_init import finished_model

METHODS = ("nce", "l1_uniform", "l1_global", "scratch")
SCRATCH_WIDTHS = ("l1_uniform", "l1_global", "nce")

HELP = {
    "trained": "The trained network to compress: a .keras file or a finished run's work directory (its "
               "model.keras; an nce run's train/). It must adapt (nce_tf.adapt): a functional or Sequential CNN "
               "with a Dense classifier.",
    "method": "How the compressed widths are chosen: nce (a width search from the trained weights, "
              "--init_from's path), l1_uniform (one keep ratio for every searchable layer, the largest whose "
              "cost meets the budget), l1_global (one threshold over every filter's normalised L1 norm, the "
              "lowest whose cost meets the budget) or scratch (the widths of --scratch_widths from random "
              "initialisation). Every method keeps the largest-L1 filters, then re-estimates BN and fine-tunes.",
    "scratch_widths": "With --method=scratch: the widths trained from random initialisation, those of "
                      f"{' | '.join(SCRATCH_WIDTHS)}.",
    "bn_batches": "Training batches the compressed network's BN statistics are re-estimated on (the mean of "
                  "the batch statistics), before the fine-tuning.",
    "export": "Export the compressed network (DIR/export/: .keras, SavedModel, int8 and int4 TFLite, "
              "model_card.json) through nce-tf export's code.",
}

# What a compression takes where the training's and the search's own defaults would not fit: a short
# fine-tuning at a fine-tuning rate, distilled from the original; no budget until one is given; a
# search from trained weights at a fine-tuning rate (flags/cifar_subset/nce_from_trained.flags);
# PACT clips from statistics (a float network has none of its own).
TOOL_DEFAULTS = {
    "epochs": 10, "warmup_epochs": 0, "lr": 0.01, "kd_weight": 0.5, "pact_init": "stats",
    "flops_ratio": 0.0, "params_ratio": 0.0, "tolerance_above": 0.0,
    "search_warmup_epochs": 2, "search_epochs": 10, "search_lr": 0.01,
}


@dataclasses.dataclass
class CompressConfig:
    """The compression's own settings; see :data:`HELP` (and ``nce-tf compress --help``)."""

    trained: str = ""
    method: str = "nce"
    scratch_widths: str = "l1_uniform"
    bn_batches: int = 20
    export: bool = True

    def validate(self):
        """Checks every field; raises a one-line :class:`UsageError`; returns ``self``."""
        def need(ok, field, allowed):
            if not ok:
                raise UsageError(f"Invalid {field}. Received: {field}={getattr(self, field)!r}. Allowed: {allowed}.")

        need(bool(self.trained), "trained", "a .keras file or a finished run's work directory")
        need(self.method in METHODS, "method", ", ".join(METHODS))
        need(self.scratch_widths in SCRATCH_WIDTHS, "scratch_widths", ", ".join(SCRATCH_WIDTHS))
        need(isinstance(self.bn_batches, int) and self.bn_batches >= 1, "bn_batches", "an integer >= 1")
        return self

    def to_dict(self):
        return dataclasses.asdict(self)


def check_train_config(tcfg):
    """``tcfg`` (a :class:`~nce_tf.train.TrainConfig`) validated as a compression reads it: ``epochs = 0``
    allowed (no fine-tuning), no ``arch`` or ``init_from`` (the trained network is where it starts; a
    ``model``, often from a flagfile, must name it: :func:`check_model`), one device."""
    for field in ("arch", "init_from"):
        if getattr(tcfg, field):
            raise UsageError(f"A compression starts from --trained. Received: {field}={getattr(tcfg, field)!r}. "
                             f"Allowed: no --{field} (pass the trained network as --trained).")
    if tcfg.strategy != "default":
        raise UsageError(f"A compression runs on one device. Received: strategy={tcfg.strategy!r}. Allowed: default.")
    if tcfg.epochs < 0:
        raise UsageError(f"Invalid epochs. Received: epochs={tcfg.epochs}. Allowed: >= 0 (0 = no fine-tuning).")
    # The distillation's teacher is the trained network unless one is given (set by the pipeline).
    teacher = tcfg.teacher or ("trained" if tcfg.kd_weight > 0 else "")
    dataclasses.replace(tcfg, epochs=max(tcfg.epochs, 1), model="", teacher=teacher,
                        warmup_epochs=tcfg.warmup_epochs if tcfg.epochs else 0).validate()
    return tcfg


def check_model(tcfg, ccfg):
    """A one-line :class:`UsageError` when ``tcfg.model`` (``--model``, often from a flagfile) names another
    network than the trained one: a compression reads its network from ``--trained``, so ``--model`` can
    only repeat its name (the model name in the ``.keras`` archive's ``config.json``, read as JSON without
    TensorFlow).  Returns ``tcfg``."""
    if not tcfg.model:
        return tcfg
    path, _ = finished_model(ccfg.trained, "trained")
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json")) if "config.json" in archive.namelist() else {}
    name = config.get("config", {}).get("name")
    if name != tcfg.model:
        raise UsageError(f"A compression reads its network from --trained, a model named {name!r}. Received: "
                         f"model={tcfg.model!r}, trained={ccfg.trained!r}. Allowed: no --model (--model= clears a "
                         f"flagfile's), or --model={name}.")
    return tcfg


def check_budget_settings(scfg):
    """A one-line :class:`UsageError` unless the budget fields of ``scfg`` set at least one ceiling and
    every ratio set lies below the original (1); absolute memory / BOPs budgets are checked against the
    original's cost once it is counted (:func:`nce_tf.compression.budget.ceiling_budget`)."""
    scfg.validate()
    for field in ("flops_ratio", "params_ratio"):
        value = getattr(scfg, field)
        if not 0 <= value < 1:
            unit = "MACs" if field == "flops_ratio" else "PARAMs"
            raise UsageError(f"Invalid {field}. Received: {field}={value!r}. Allowed: 0 < {field} < 1 (a ceiling "
                             f"below the original's {unit}), or 0 for none.")
    if scfg.tolerance_above != 0:
        raise UsageError(f"Invalid tolerance_above. Received: tolerance_above={scfg.tolerance_above!r}. Allowed: 0 "
                         "(a compression's budget is a ceiling).")
    for field in ("memory_ratio", "bops_ratio"):
        value = scfg.budget_value(field)
        if value is not None and value >= 1:
            raise UsageError(f"Invalid {field}. Received: {field}={getattr(scfg, field)!r}. Allowed: a number in "
                             "(0, 1) (a ceiling below the original's), or empty for none.")
    if not (scfg.flops_ratio or scfg.params_ratio
            or any(scfg.budget_value(f) is not None for f in ("memory_bytes", "memory_ratio", "bops", "bops_ratio"))):
        raise UsageError("A compression needs a budget. Received: flops_ratio=0, params_ratio=0, no memory or BOPs "
                         "budget. Allowed: --flops_ratio, --params_ratio, --memory_bytes / --memory_ratio or "
                         "--bops / --bops_ratio below the original's cost.")
    return scfg
