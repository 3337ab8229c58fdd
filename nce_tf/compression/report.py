"""What a compression reports: ``DIR/compress.json`` (the record) and ``DIR/report.md`` (for people).

The costs are counted twice and must agree: on the compressed Keras model as built
(:func:`nce_tf.cost.count_model`, the count ``nce-tf count`` prints) and by the adapted space that
chose the widths (:meth:`~nce_tf.search.units.Budget.costs`).  ``within_budget`` is the model's
count against every ceiling.  The record holds the accuracy of the original, of the derived network
before fine-tuning (inherited weights, BN re-estimated) and of the compressed one, on the same test
images; each row's original and compressed width; each phase's wall and CPU time (``provenance``'s
``times``, summed over the run's sittings); the fine-tuning's own metrics and the export's model card
when there are any.
"""

import json
import os

from nce_tf import cost
from nce_tf.io_utils import atomic_write_json, atomic_write_text

_UNITS = ("macs", "params", "memory_bytes", "bops")


def _costs(counted):
    return {"macs": int(counted.macs), "params": int(counted.params), "memory_bytes": float(counted.memory_bytes),
            "bops": int(counted.bops)}


def write_report(workdir, *, model, original, space, widths, budget, policy, float_bits, tcfg, scfg, ccfg,
                 accuracy, finetune, export_card, pact_clips, provenance, trained_file):
    """Writes ``compress.json`` and ``report.md`` into ``workdir``; returns the record (module doc).

    Args:
        workdir: the compression's work directory.
        model: the compressed Keras model; original: the trained one.
        space: the adapted space of ``original``; widths: the compressed widths (one per row).
        budget: the ceilings (:func:`nce_tf.compression.budget.ceiling_budget`).
        policy, float_bits: the bits the costs are counted at.
        tcfg, scfg, ccfg: the three configs.
        accuracy: ``{"original", "derived", "compressed"}`` test accuracies.
        finetune: the fine-tuning's metrics (``None`` with ``epochs = 0``).
        export_card: the export's model card (``None`` without export).
        pact_clips: the clips set from statistics.
        provenance: :func:`nce_tf.provenance.record` of the compression's clock.
        trained_file: the trained network's ``.keras`` file.
    """
    counted = _costs(cost.count_model(model, float_bits))
    space_costs = budget.costs(space, widths)
    orig = budget.costs(space, space.default_widths())
    compressed = {**counted, **{f"{u.split('_')[0]}_ratio": counted[u] / orig[u] for u in _UNITS}}
    limits = {unit: high for unit, _, _, high in budget.bands()}
    result = {
        "method": ccfg.method, "trained": {"path": ccfg.trained, "file": trained_file},
        "model_name": original.name, "w_bits": tcfg.w_bits, "a_bits": tcfg.a_bits, "float_bits": float_bits,
        "dataset": tcfg.dataset, "seed": tcfg.seed, "epochs": tcfg.epochs,
        "kd_weight": tcfg.kd_weight, "kd_temperature": tcfg.kd_temperature,
        "accuracy": accuracy,
        "widths": [{"layer": r.name, "original": r.n, "compressed": int(w), "pinned": r.frozen}
                   for r, w in zip(space.rows, widths)],
        "costs": {"original": {u: orig[u] for u in _UNITS}, "compressed": compressed,
                  "space_count": {u: space_costs[u] for u in _UNITS}},
        "budget": {**budget.to_dict(), "ceilings": limits},
        "within_budget": all(counted[u] <= hi for u, hi in limits.items()),
        "counts_agree": all(float(counted[u]) == float(space_costs[u]) for u in _UNITS),
        "pact_clips": pact_clips, "settings": {"compress": ccfg.to_dict(), "search": scfg.to_dict()},
        "provenance": provenance,
    }
    if finetune is not None:
        result["finetune"] = {k: finetune.get(k) for k in ("test_accuracy", "test_loss", "final_train_accuracy",
                                                           "epochs", "steps_per_epoch", "teacher")}
    if export_card is not None:
        result["export"] = {"files": export_card.get("files"), "parity": export_card.get("parity")}
    atomic_write_json(os.path.join(workdir, "compress.json"), result)
    atomic_write_text(os.path.join(workdir, "report.md"), _markdown(result))
    return result


def _markdown(r):
    o, c, times = r["costs"]["original"], r["costs"]["compressed"], r["provenance"].get("times", {})
    a = r["accuracy"]
    lines = [
        f"# Compression of {r['model_name']} ({r['method']}, W{r['w_bits']}A{r['a_bits']})",
        "",
        f"Trained network: `{r['trained']['path']}`; data `{r['dataset']}`, seed {r['seed']}; fine-tuning "
        f"{r['epochs']} epochs" + (f", distilled from the original (w={r['kd_weight']:g}, T={r['kd_temperature']:g})"
                                   if r["epochs"] and r["kd_weight"] else "") + ".",
        "",
        "| | original | compressed | ratio | ceiling |",
        "|---|---|---|---|---|",
    ]
    for unit in ("macs", "params", "memory_bytes", "bops"):
        ceiling = r["budget"]["ceilings"].get(unit)
        lines.append(f"| {unit} | {o[unit]:,.0f} | {c[unit]:,.0f} | {c[unit.split('_')[0] + '_ratio']:.3f} | "
                     f"{'-' if ceiling is None else f'{ceiling:,.0f}'} |")
    lines += [
        f"| test accuracy | {a['original']:.4f} | {a['compressed']:.4f} | | |",
        "",
        f"Within budget: {r['within_budget']} (memory and BOPs at {r['float_bits']} bits for float kernels; the "
        f"model's count equals the search space's: {r['counts_agree']}). Accuracy after derivation and BN "
        f"re-estimation, before fine-tuning: {a['derived']:.4f}.",
        "",
        "| layer | original | compressed | kept |",
        "|---|---|---|---|",
    ]
    for w in r["widths"]:
        lines.append(f"| {w['layer']} | {w['original']} | {w['compressed']}{' (pinned)' if w['pinned'] else ''} | "
                     f"{w['compressed'] / w['original']:.3f} |")
    lines += ["", "| phase | wall s | CPU s |", "|---|---|---|"]
    for name, entry in times.get("phases", {}).items():
        lines.append(f"| {name} | {entry['wall_seconds']:.1f} | {entry['cpu_seconds']:.1f} |")
    lines += ["", f"Code: nce-tf {r['provenance'].get('nce_tf')}, commit {r['provenance'].get('commit')}"
              f"{' (dirty)' if r['provenance'].get('dirty') else ''}; versions "
              f"{json.dumps(r['provenance'].get('versions'))}."]
    return "\n".join(lines) + "\n"
