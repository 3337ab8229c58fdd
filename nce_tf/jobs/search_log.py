"""The search's per-epoch record: one JSON line in ``search_log.jsonl`` and one progress line.

A record holds the phase, tau, the epoch's losses and accuracies, the expected and argmax MACs /
PARAMs (and weight memory / BOPs when the budget limits them) against the targets, per-row candidate
counts and probabilities, the rows the epoch expanded, and the architecture steps' instruments
(:meth:`~nce_tf.search.supernet.SuperNet.take_arch_diagnostics`):

- ``alpha_grad_ce``, ``alpha_grad_cost``: per row, the epoch's mean alpha gradient per candidate in
  two parts, each candidate averaged over the steps it was live (a candidate an expansion added
  at the epoch's end was live in none and is left out; ``alpha_grad_steps`` counts the steps);
- ``alpha_grad_norm_ce``, ``alpha_grad_norm_cost``: per row, the mean L2 norm of each part;
- ``cost_active``: per budgeted unit, the fractions of the steps its constraint pushed the cost
  ``down`` and ``up``;

and, read at the epoch's end: ``subnet_1x_accuracy`` (the 1X sub-network's accuracy on a fixed
slice of the architecture half, normalised by that slice's own batch statistics:
:func:`subnet_accuracy`) and ``pact_clips`` (every PACT site's clip ``alpha``, by layer name).

Example::

    expansion = ChannelExpansion(threshold=0.3)
    probe = data.make_pipeline(arch_half.take(512), info, training=False, batch_size=256)
    net.fit(data, epochs=20, callbacks=[TauSchedule(20), expansion,
                                        SearchLog(expansion, "runs/s/search_log.jsonl", total_epochs=20,
                                                  probe=probe)])
"""

import json
import time

import keras
import numpy as np
import tensorflow as tf

from nce_tf.analysis.metrics import kendall_tau
from nce_tf.search.methods import method_for
from nce_tf.search.units import UNITS


class SearchLog(keras.callbacks.Callback):
    """Appends each epoch's record to a JSONL file and prints its progress line.

    Runs after :class:`~nce_tf.search.callbacks.ChannelExpansion` (the record names the rows it
    expanded this epoch) and takes the super-net's arch-step instruments, which start afresh after
    it.  The gradients it records need no particular order: each candidate's mean is over the
    steps it was live, so an entry the expansion just added is not recorded as a zero.

    Args:
        expansion: the run's :class:`~nce_tf.search.callbacks.ChannelExpansion`.
        path: the JSONL file (appended to: a resumed search continues its log).
        total_epochs: warm-up + search epochs, for the progress line.
        verbose: print the progress line.
        probe: ``None`` or a finite dataset of ``(x, y)`` batches (a fixed slice of the
            architecture half, not augmented) on which every record measures the 1X sub-network.

    Attributes:
        last: the latest record (:class:`~nce_tf.search.tensorboard.SearchTensorBoard` reads it).
    """

    def __init__(self, expansion, path, total_epochs, verbose=True, probe=None):
        super().__init__()
        self.expansion, self.path, self.total_epochs, self.verbose = expansion, path, total_epochs, verbose
        self.probe, self.last = probe, None
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        record = self.last = self.record(epoch, logs or {})
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
            **{f"target_{e.name}": e.target for e in net.budget.entries},
            "argmax_widths": [int(w) for w in net.argmax_widths().numpy()],
            "num_candidates": k.tolist(), "expanded_rows": self.expansion.rows_expanded_in(epoch),
            "layers_expanded": int((k > net.k_init).sum()) if method_for(net.mode).expands else 0,
            "probs": [[round(float(p), 5) for p in row[:kk]] for row, kk in zip(probs, k)],
            **net.take_arch_diagnostics(),
            **({"subnet_1x_accuracy": subnet_accuracy(net, self.probe), "subnet_1x_statistics": "batch"}
               if self.probe is not None else {}),
            "pact_clips": pact_clips(net),
            "elapsed_seconds": round(time.time() - self.started, 1),
        }

    def line(self, r):
        parts = [f"search epoch {r['epoch']}/{self.total_epochs} [{r['phase']}] tau {r['tau']:.2f}",
                 f"loss {r.get('loss', float('nan')):.3f} acc {r.get('accuracy', float('nan')):.3f}"]
        if r["phase"] == "search":
            parts.append(f"arch loss {r.get('arch_loss', float('nan')):.3f} acc {r.get('arch_accuracy', 0):.3f} "
                         f"cost loss {r.get('cost_loss', 0):+.2f}")
            parts.append("wider wanted by CE {} / cost {} of {} rows".format(
                *(_wider_rows(r.get(f"alpha_grad_{p}") or []) for p in ("ce", "cost")), len(r["num_candidates"])))
            active = [f"{unit} {'v' if a['down'] >= a['up'] else '^'}{max(a['down'], a['up']):.2f}"
                      for unit, a in r.get("cost_active", {}).items() if a["down"] or a["up"]]
            parts.append("cost pushing " + (", ".join(active) if active else "never"))
        if "subnet_1x_accuracy" in r:
            parts.append(f"1X acc {r['subnet_1x_accuracy']:.3f}")
        for unit in UNITS.values():
            name = unit.name
            if f"target_{name}" in r:  # a unit without a budget has target 0 (MACs, params) or none
                target = unit.show(r[f"target_{name}"]) if r[f"target_{name}"] else "-"
                parts.append(f"{unit.label} E {unit.show(r[f'expected_{name}'])} "
                             f"argmax {unit.show(r[f'argmax_{name}'])} / {target}")
        parts.append(f"expanded layers {r['layers_expanded']} (+{len(r['expanded_rows'])} this epoch)")
        return " | ".join(parts)


def one_x_widths(net):
    """Per row, the 1X sub-network's width: the narrowest live candidate at or above the row's original
    width ``n`` (``n`` itself unless a lane grid rounded it up)."""
    k = net.num_candidates.numpy()
    return [int(min(c for c in net.table_np[r, :k[r]] if c >= row.n)) for r, row in enumerate(net.space.rows)]


def subnet_accuracy(net, batches, widths=None, statistics="batch"):
    """Top-1 accuracy of one fixed sub-network (default: the 1X one) over ``batches``.

    Every row computes its candidate's own BN (:meth:`~nce_tf.search.supernet.SuperNet.subnet_sample`),
    normalising by

    - ``"batch"`` (default): each batch's own statistics (a training-mode forward; the layers'
      running statistics are saved before and restored after, so nothing changes).  What the
      search's weights compute at these widths.  Pass large batches (the log passes 512 images as one).
    - ``"running"``: the candidates' running statistics (inference mode).  During a search these
      are not the sub-network's: a candidate's statistics move with every sampled pair that draws
      it, whatever widths the layers before it had.  Measured on a W2A2 ResNet-20 searched from
      its trained network (3 warm-up epochs at lr 0.002): the 1X sub-network at 9.2% with its
      running statistics, 73.6% with batch statistics, 75.8% after re-estimating them.

    Args:
        net: a :class:`~nce_tf.search.supernet.SuperNet`.
        batches: an iterable of ``(x, y)`` batches.
        widths: one live width per row; default :func:`one_x_widths`.
        statistics: ``"batch"`` or ``"running"``.
    """
    if statistics not in ("batch", "running"):
        raise ValueError(f"Invalid statistics. Received: statistics={statistics!r}. Allowed: 'batch', 'running'.")
    sample = net.subnet_sample(one_x_widths(net) if widths is None else widths)
    saved = [(v, v.numpy()) for v in net.statistics_variables()] if statistics == "batch" else []
    correct = total = 0
    try:
        for x, y in batches:
            logits, _ = net.forward(x, sample, training=statistics == "batch")
            correct += int(tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=-1), tf.cast(y, tf.int64)), tf.int32)))
            total += int(np.shape(y)[0])
    finally:
        for v, value in saved:
            v.assign(value)
    return correct / max(total, 1)


def pact_clips(net):
    """``{layer name: clip}`` of every activation site with a PACT clip ``alpha``."""
    return {act.name: float(act.alpha.numpy()) for act in net.act_layers if getattr(act, "alpha", None) is not None}


def _wider_rows(grads):
    """How many rows' gradient ranks wider candidates as more wanted (Kendall's tau > 0)."""
    return sum(1 for g in grads if len(g) > 1 and any(g) and kendall_tau(range(len(g)), [-v for v in g]) > 0)
