"""One record per finished run: the unit every generated README table is made of.

A record is one JSON line of a ``results/NAME.jsonl`` file, read off a finished work directory
(never typed by hand)::

    {"format": "nce_tf.result/1", "id": "3f0c...", "kind": "train", "run": "runs/premise/w2a2_s0",
     "model": "resnet20", "dataset": "cifar10_subset", "w_bits": 2, "a_bits": 2,
     "init": "scratch", "kd": false, "epochs": 15, "seeds": {"seed": 0},
     "widths": [16, ...], "costs": {"macs": 40813184, "params": 272474, "weight_memory_bytes": ...},
     "accuracy": {"test": 0.5873, "test_loss": 1.21, "final_train": 0.61},
     "settings": {... the run's config.json ...}, "provenance": {... metrics.json's ...}}

Kinds, by what the work directory holds:

- ``train``: ``nce-tf train`` (``config.json`` + ``metrics.json``);
- ``nce``: ``nce-tf nce`` (its search's ``arch.json`` and ``search_config.json``, the final
  training in ``train/``); adds ``search`` (mode, cost ratios, budget check, the search's
  settings and provenance) and the search's seeds;
- ``search``: ``nce-tf search`` alone (``arch.json``, no accuracy);
- ``compress``: ``nce-tf compress`` (``compress.json`` + ``compress_config.json``): adds ``method``,
  ``budget`` (its ratios and absolute ceilings as given), ``accuracy`` of the compressed network
  (``test``) beside the original's and the derived network's before fine-tuning, ``finetune`` (epochs,
  steps per epoch, distillation weight and temperature), and ``times``
  (wall seconds per phase, every sitting summed); ``widths`` are the compressed widths.

A run without provenance (made before nce-tf recorded it) is refused: its record could not name
the commit it ran. ``seeds`` holds every setting named ``seed`` or ``*_seed``; ``init`` is
``"float"`` for a run started from a float network (``--init_from``), else ``"scratch"``;
``kd`` whether it distilled from a teacher; ``structure`` (trainings and pipelines) ``"original"``
for the model's own widths, else the mode of the search whose ``arch.json`` it trained (``"nce"``,
``"tas"``, ...). ``id`` identifies the run (its kind, settings and the start of its first sitting),
so collecting a run twice adds it once.

Example::

    rec = record_of("runs/premise/w2a2_s0")
    append_records("results/premise_trained.jsonl", [rec])   # -> (1, 0): added, already there
"""

import hashlib
import json
import os

from nce_tf.compression import BUDGET_FIELDS
from nce_tf.errors import UsageError
from nce_tf.io_utils import atomic_write_text

FORMAT = "nce_tf.result/1"
KINDS = ("train", "nce", "search", "compress")


def _read_json(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"The run's {what} does not read ({type(e).__name__}). Received: {path!r}") from None
    if not isinstance(value, dict):
        raise UsageError(f"The run's {what} is not a JSON object. Received: {path!r}")
    return value


def kind_of(run_dir):
    """``"train"``, ``"nce"`` or ``"search"``: what finished in ``run_dir`` (one-line error if nothing did)."""
    has = lambda *names: os.path.isfile(os.path.join(run_dir, *names))  # noqa: E731
    if has("compress.json") and has("compress_config.json"):
        return "compress"
    if has("arch.json") and has("search_config.json") and has("train", "metrics.json") and has("metrics.json"):
        return "nce"
    if has("metrics.json") and has("config.json"):
        return "train"
    if has("arch.json") and has("search_config.json") and not has("metrics.json"):
        return "search"
    raise UsageError("Not a finished run (no metrics.json with its config.json, nor a search's arch.json). "
                     f"Received: {run_dir!r}. Allowed: work directories of nce-tf train, nce, search or compress that finished.")


def is_finished(run_dir):
    """Whether ``run_dir`` holds a finished run of a kind :func:`record_of` reads (see :func:`kind_of`)."""
    try:
        kind_of(run_dir)
    except UsageError:
        return False
    return True


def _seeds(settings):
    return {k: v for k, v in sorted(settings.items()) if k == "seed" or k.endswith("_seed")}


def _provenance(entry, path, run_dir):
    if not isinstance(entry, dict) or "commit" not in entry:
        raise UsageError(f"The run has no provenance (it ran before nce-tf recorded it), so its record could not "
                         f"name its commit. Received: {path!r}. Re-run it with this nce-tf, in run_dir {run_dir!r}.")
    return entry


def _trained(run_dir):
    """The fields a training contributes, from ``run_dir/config.json`` and ``metrics.json``."""
    settings = _read_json(os.path.join(run_dir, "config.json"), "config.json")
    path = os.path.join(run_dir, "metrics.json")
    metrics = _read_json(path, "metrics.json")
    return {
        "model": metrics.get("model"), "dataset": metrics.get("dataset"),
        "w_bits": metrics.get("w_bits"), "a_bits": metrics.get("a_bits"),
        "init": "float" if settings.get("init_from") else "scratch", "kd": bool(settings.get("teacher")),
        "structure": metrics.get("structure") or _structure(settings), "epochs": metrics.get("epochs"),
        "seeds": _seeds(settings), "widths": metrics.get("widths"),
        "costs": {k: metrics.get(k) for k in ("macs", "params", "weight_memory_bytes")},
        "accuracy": {"test": metrics.get("test_accuracy"), "test_loss": metrics.get("test_loss"),
                     "final_train": metrics.get("final_train_accuracy")},
        "settings": settings, "provenance": _provenance(metrics.get("provenance"), path, run_dir),
    }


def _structure(settings):
    """What a training's widths came from, for a run whose ``metrics.json`` does not say (made before
    trainings recorded it): ``"original"`` (the model's own), else the search mode named by the
    ``arch.json`` it took, read now (``"arch"`` when that file no longer reads)."""
    path = settings.get("arch")
    if not path:
        return "original"
    try:
        with open(path, encoding="utf-8") as f:
            search = json.load(f).get("search") or {}
    except (OSError, ValueError, AttributeError):
        return "arch"
    return search.get("mode") or "arch"


def _searched(run_dir):
    """The fields a search contributes, from ``run_dir/arch.json`` and ``search_config.json``."""
    settings = _read_json(os.path.join(run_dir, "search_config.json"), "search_config.json")
    path = os.path.join(run_dir, "arch.json")
    arch = _read_json(path, "arch.json")
    return {
        "model": arch.get("model"), "dataset": arch.get("dataset"), "w_bits": arch.get("w_bits"),
        "a_bits": arch.get("a_bits"), "seeds": _seeds(settings), "widths": arch.get("widths"),
        "costs": {"macs": arch.get("macs"), "params": arch.get("params"), "weight_memory_bytes": arch.get("memory_bytes")},
        "search": {"mode": settings.get("mode"), "macs_ratio": arch.get("macs_ratio"),
                   "params_ratio": arch.get("params_ratio"), "within_budget": arch.get("within_budget"),
                   "settings": settings, "provenance": _provenance(arch.get("provenance"), path, run_dir)},
    }


def _compressed(run_dir):
    """The fields a compression contributes, from ``run_dir/compress.json`` and ``compress_config.json``."""
    settings = _read_json(os.path.join(run_dir, "compress_config.json"), "compress_config.json")
    path = os.path.join(run_dir, "compress.json")
    report = _read_json(path, "compress.json")
    provenance = _provenance(report.get("provenance"), path, run_dir)
    phases = (provenance.get("times") or {}).get("phases") or {}
    accuracy = report.get("accuracy") or {}
    return {
        "model": report.get("model_name"), "dataset": report.get("dataset"), "w_bits": report.get("w_bits"),
        "a_bits": report.get("a_bits"), "method": report.get("method"), "epochs": report.get("epochs"),
        "budget": {k: v for k, v in (report.get("budget") or {}).items() if k in BUDGET_FIELDS and v},
        "seeds": _seeds(settings), "widths": [w.get("compressed") for w in report.get("widths") or []],
        "costs": (report.get("costs") or {}).get("compressed"), "within_budget": report.get("within_budget"),
        "accuracy": {"test": accuracy.get("compressed"), "original": accuracy.get("original"),
                     "derived": accuracy.get("derived")},
        # the fine-tuning every method shares: its length and its distillation from the original
        "finetune": {"epochs": (report.get("finetune") or {}).get("epochs"),
                     "steps_per_epoch": (report.get("finetune") or {}).get("steps_per_epoch"),
                     "kd_weight": report.get("kd_weight"), "kd_temperature": report.get("kd_temperature")},
        "times": {phase: t.get("wall_seconds") for phase, t in phases.items()},
        "settings": settings, "provenance": provenance,
    }


def _where(run_dir, root):
    """The run directory as the record names it: relative to ``root`` when inside it."""
    path = os.path.abspath(run_dir)
    if root and os.path.commonpath([path, os.path.abspath(root)]) == os.path.abspath(root):
        return os.path.relpath(path, root)
    return path


def record_of(run_dir, root=None):
    """The record of the finished run in ``run_dir`` (see the module doc).

    Args:
        run_dir: a work directory of ``nce-tf train``, ``nce``, ``search`` or ``compress`` that finished.
        root: name the run relative to this directory when it lies inside it (a checkout's root).
    """
    if not os.path.isdir(run_dir):
        raise UsageError(f"Run directory not found. Received: {run_dir!r}")
    kind = kind_of(run_dir)
    if kind == "train":
        fields = _trained(run_dir)
    elif kind == "compress":
        fields = _compressed(run_dir)
    elif kind == "search":
        fields = _searched(run_dir)
        fields["provenance"] = fields["search"]["provenance"]
    else:
        searched, fields = _searched(run_dir), _trained(os.path.join(run_dir, "train"))
        fields["seeds"] = {**searched["seeds"], **fields["seeds"]}
        fields["search"] = searched["search"]
        fields["structure"] = searched["search"]["mode"]
    sittings = fields["provenance"].get("times", {}).get("sittings") or [{}]
    ident = json.dumps([kind, fields.get("settings") or fields["search"]["settings"], sittings[0].get("started")],
                       sort_keys=True, default=str)
    return {"format": FORMAT, "id": hashlib.sha256(ident.encode()).hexdigest()[:16], "kind": kind,
            "run": _where(run_dir, root), **fields}


def read_records(path):
    """The records of a ``.jsonl`` file, in file order (one-line error naming a bad line)."""
    if not os.path.isfile(path):
        raise UsageError(f"Results file not found. Received: {path!r}")
    out = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                rec = None
            if not isinstance(rec, dict) or rec.get("format") != FORMAT or rec.get("kind") not in KINDS:
                raise UsageError(f"Line {number} of the results file is not a {FORMAT} record. Received: {path!r}")
            out.append(rec)
    return out


def append_records(path, records):
    """Appends ``records`` to the ``.jsonl`` file at ``path`` (made if absent), skipping those whose
    ``id`` it holds already; the file is rewritten whole or not at all. Returns ``(added, skipped)``."""
    if not path.endswith(".jsonl"):
        raise UsageError(f"A results file ends in .jsonl. Received: out={path!r}")
    existing = read_records(path) if os.path.exists(path) else []
    seen = {r["id"] for r in existing}
    new = []
    for rec in records:
        if rec["id"] not in seen:
            seen.add(rec["id"])
            new.append(rec)
    if new:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        lines = [json.dumps(r, sort_keys=True, default=str) for r in [*existing, *new]]
        atomic_write_text(path, "\n".join(lines) + "\n")
    return len(new), len(records) - len(new)
