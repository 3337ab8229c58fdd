"""The main job behind ``tools/nce.py``: search, derive, train the derived network, report.

One work directory holds the whole run (see WORKSPACE.md):

- the search's files (``search_config.json``, ``search_log.jsonl``, ``search/``, ``arch.json``);
- ``train/``: the final QAT training of the derived network from scratch (``tools/train.py``'s
  layout: ``config.json``, checkpoints, TensorBoard, ``model.keras``, ``metrics.json``);
- ``metrics.json``: test accuracy, MACs and PARAMs of the derived network and of the original,
  the provenance of the final training and of the search (:mod:`nce_tf.provenance`), written
  last and atomically;
- ``report.md``: the per-layer cost table (original vs derived channels, bits, MACs, PARAMs,
  memory) and the headline numbers.

Re-running the same command resumes: a finished search (``arch.json`` present) is not redone,
and the training resumes from its last finished epoch.

Example::

    from nce_tf.pipeline import run_nce
    from nce_tf.search import SearchConfig
    from nce_tf.train import TrainConfig
    metrics = run_nce(TrainConfig(workdir="runs/nce", w_bits=2, a_bits=2, epochs=8),
                      SearchConfig(search_warmup_epochs=4, search_epochs=12))
"""

import dataclasses
import json
import os

from nce_tf import arch as arch_lib
from nce_tf.io_utils import atomic_write_json, atomic_write_text


def run_nce(train_config, search_config, verbose=True, strategy=None):
    """Runs search + derivation + final training; returns the metrics written to ``metrics.json``.

    The search hands the training its architecture in memory (its own record, or the finished
    search's ``arch.json`` on a re-run), and the report reuses the training's count of the network.

    Args:
        train_config: a :class:`nce_tf.train.TrainConfig`: the search's model, data and bits, and the
            final training's schedule (its work directory holds the whole run).
        search_config: a :class:`nce_tf.search.SearchConfig`.
        verbose: print the search's progress lines.
        strategy: a ``tf.distribute.Strategy`` for both; default: the one ``train_config.strategy`` names.
    """
    # the jobs load TensorFlow: nce_tf.pipeline (listed by nce_tf) stays light until run
    from nce_tf.jobs.search import check_resumable, run_search
    from nce_tf.jobs.train import run_training

    tcfg, scfg = train_config.validate(), search_config.validate()
    workdir = os.path.abspath(tcfg.workdir)
    arch_path = os.path.join(workdir, "arch.json")
    # A finished search with the same settings is not redone (--overwrite with other settings redoes it).
    if (os.path.exists(arch_path) and os.path.exists(os.path.join(workdir, "search_config.json"))
            and check_resumable(workdir, tcfg, scfg)):
        if verbose:
            print(f"nce-tf: search already finished, using {arch_path}", flush=True)
        arch = arch_lib.load_arch(arch_path)
    else:
        arch = arch_lib.Arch.from_record(run_search(tcfg, scfg, verbose=verbose, strategy=strategy), path=arch_path)
    trained = run_training(dataclasses.replace(tcfg, workdir=os.path.join(workdir, "train")), strategy=strategy,
                           arch=arch)
    extra = arch.extra
    original = {"widths": extra["original_widths"], "macs": extra["original_macs"], "params": extra["original_params"]}
    metrics = {
        "model": arch.model, "mode": scfg.mode, "dataset": trained["dataset"],
        "w_bits": tcfg.w_bits, "a_bits": tcfg.a_bits, "epochs": tcfg.epochs,
        "test_accuracy": trained["test_accuracy"], "macs": trained["macs"], "params": trained["params"],
        "macs_ratio": trained["macs"] / original["macs"], "params_ratio": trained["params"] / original["params"],
        "within_budget": extra["within_budget"], "widths": arch.widths,
        "num_candidates": extra.get("num_candidates"), "derived": dict(trained), "original": original,
        "budget": extra["budget"], "search": scfg.to_dict(),
        # the final training's provenance (what produced the accuracy) and the search's
        "provenance": trained.get("provenance"), "search_provenance": extra.get("provenance"),
    }
    write_report(os.path.join(workdir, "report.md"), arch, metrics, tcfg.policy(), trained.cost)
    atomic_write_json(os.path.join(workdir, "metrics.json"), metrics)
    if verbose:
        print("nce-tf: " + json.dumps({k: metrics[k] for k in ("test_accuracy", "macs", "params", "macs_ratio",
                                                              "params_ratio")})
              + f" -> {workdir}/metrics.json, {workdir}/report.md", flush=True)
    return metrics


def _human(n):
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}"
    return f"{n:g}"


def write_report(path, arch, metrics, policy, derived):
    """``report.md``: headline numbers and the per-layer cost table, original vs derived.

    Args:
        path: the file to write.
        arch: the derived :class:`nce_tf.arch.Arch`.
        metrics: what the pipeline writes to ``metrics.json``.
        policy: the :class:`nce_tf.models.QuantPolicy` of the training.
        derived: the trained network's :class:`nce_tf.cost.ModelCost` (the training's own count).
    """
    # the jobs load TensorFlow: nce_tf.pipeline (listed by nce_tf) stays light until run
    from nce_tf import cost

    # The original at the search's input and classes (an ImageNet-family model may be searched on
    # 32 x 32 images), as arch.json's ratios are.
    shape = arch.extra.get("input_shape")
    original = cost.count_arch(arch.model, None, policy=policy, num_classes=metrics["derived"].get("num_classes"),
                               input_shape=tuple(shape) if shape else None)
    orig_rows = {r.name: r for r in original.layers}
    lines = [
        f"# NCE report: {arch.model} W{metrics['w_bits']}A{metrics['a_bits']}",
        "",
        "| | original | derived |",
        "|---|---|---|",
        f"| MACs | {original.macs:,} | {derived.macs:,} ({metrics['macs_ratio']:.3f}x) |",
        f"| PARAMs | {original.params:,} | {derived.params:,} ({metrics['params_ratio']:.3f}x) |",
        f"| weight memory | {_human(original.memory_bytes)}B | {_human(derived.memory_bytes)}B |",
        f"| test accuracy | - | {metrics['test_accuracy']:.4f} |",
        "",
        f"Mode `{metrics['mode']}`, budget: {json.dumps(metrics['budget'])}; within budget: "
        f"{metrics['within_budget']}. Layers expanded beyond 1X: "
        f"{sum(1 for w, n in zip(arch.widths, metrics['original']['widths']) if w > n)} of {len(arch.widths)}.",
        "",
        "| layer | kind | original in/out | derived in/out | W bits | MACs | PARAMs | memory |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in derived.layers:
        o = orig_rows.get(r.name)
        was = f"{o.in_channels}/{o.out_channels}" if o else "- (projection added)"
        lines.append(f"| {r.name} | {r.kind} | {was} | {r.in_channels}/{r.out_channels} | {r.w_bits} | "
                     f"{_human(r.macs)} | {_human(r.params)} | {_human(r.memory_bytes)}B |")
    atomic_write_text(path, "\n".join(lines) + "\n")
