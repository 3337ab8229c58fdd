"""The search's per-epoch record: one JSON line in ``search_log.jsonl`` and one progress line.

A record holds the phase, tau, the epoch's losses and accuracies, the expected and argmax MACs /
PARAMs (and weight memory / BOPs when the budget limits them) against the targets, per-row candidate counts and probabilities, the rows the epoch
expanded, and the epoch's mean alpha gradient per row in two parts (``alpha_grad_ce``,
``alpha_grad_cost``).

Example::

    expansion = ChannelExpansion(threshold=0.3)
    net.fit(data, epochs=20, callbacks=[TauSchedule(20), expansion,
                                        SearchLog(expansion, "runs/s/search_log.jsonl", total_epochs=20)])
"""

import json
import time

import keras


class SearchLog(keras.callbacks.Callback):
    """Appends each epoch's record to a JSONL file and prints its progress line.

    Runs after :class:`~nce_tf.search.callbacks.ChannelExpansion` (the record names the rows it
    expanded this epoch) and reads the super-net's alpha gradients, which start afresh after it.

    Args:
        expansion: the run's :class:`~nce_tf.search.callbacks.ChannelExpansion`.
        path: the JSONL file (appended to: a resumed search continues its log).
        total_epochs: warm-up + search epochs, for the progress line.
        verbose: print the progress line.
    """

    def __init__(self, expansion, path, total_epochs, verbose=True):
        super().__init__()
        self.expansion, self.path, self.total_epochs, self.verbose = expansion, path, total_epochs, verbose
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        record = self.record(epoch, logs or {})
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.verbose:
            print(self.line(record), flush=True)

    def record(self, epoch, logs):
        net = self.model
        cost = {k: float(v) for k, v in net.cost_terms().items()}
        k = net.num_candidates.numpy()
        probs = net.probs().numpy()
        return {
            "epoch": epoch + 1, "phase": "search" if net.arch_updates else "warmup",
            "tau": float(net.tau.numpy()), **{k_: float(v) for k_, v in logs.items()}, **cost,
            "target_macs": net.budget.targets[0], "target_params": net.budget.targets[1],
            **{f"target_{u.unit}": u.target for u in net.budget.units},
            "argmax_widths": [int(w) for w in net.argmax_widths().numpy()],
            "num_candidates": k.tolist(), "expanded_rows": self.expansion.rows_expanded_in(epoch),
            "layers_expanded": int((k > 8).sum()) if net.mode == "nce" else 0,
            "probs": [[round(float(p), 5) for p in row[:kk]] for row, kk in zip(probs, k)],
            **{f"alpha_grad_{part}": g for part, g in net.take_alpha_grads().items()},
            "elapsed_seconds": round(time.time() - self.started, 1),
        }

    def line(self, r):
        m = lambda v: f"{v / 1e6:.2f}M"  # noqa: E731
        parts = [f"search epoch {r['epoch']}/{self.total_epochs} [{r['phase']}] tau {r['tau']:.2f}",
                 f"loss {r.get('loss', float('nan')):.3f} acc {r.get('accuracy', float('nan')):.3f}"]
        if r["phase"] == "search":
            parts.append(f"arch loss {r.get('arch_loss', float('nan')):.3f} acc {r.get('arch_accuracy', 0):.3f} "
                         f"cost loss {r.get('cost_loss', 0):+.2f}")
            parts.append("wider wanted by CE {} / cost {} of {} rows".format(
                *(_wider_rows(r.get(f"alpha_grad_{p}") or []) for p in ("ce", "cost")), len(r["num_candidates"])))
        kb = lambda v: f"{v / 1e3:.1f}kB"  # noqa: E731
        for unit, name, f in (("macs", "MACs", m), ("params", "params", m), ("memory_bytes", "memory", kb),
                              ("bops", "BOPs", m)):
            if f"target_{unit}" in r:  # a unit without a budget has target 0 (MACs, params) or none
                target = f(r[f"target_{unit}"]) if r[f"target_{unit}"] else "-"
                parts.append(f"{name} E {f(r[f'expected_{unit}'])} argmax {f(r[f'argmax_{unit}'])} / {target}")
        parts.append(f"expanded layers {r['layers_expanded']} (+{len(r['expanded_rows'])} this epoch)")
        return " | ".join(parts)


def _wider_rows(grads):
    """How many rows' gradient ranks wider candidates as more wanted (Kendall's tau > 0)."""
    from nce_tf.analysis.metrics import kendall_tau

    return sum(1 for g in grads if len(g) > 1 and any(g) and kendall_tau(range(len(g)), [-v for v in g]) > 0)
