"""The search job behind ``tools/search.py``: warm-up, bi-level search with expansion, derivation.

What it writes into the work directory (see WORKSPACE.md):

- ``search_config.json``: the resolved training and search settings, written first;
- ``search/checkpoints/``: the whole search state every epoch (super-net weights, alpha,
  candidate counts, BN statistics, both optimizers, tau, the sampler's random state, the
  epoch); re-running the same command resumes from the last finished epoch;
- ``search_log.jsonl``: one JSON line per epoch (phase, tau, losses, accuracies, per-row
  probabilities and candidate counts, expected and argmax MACs / PARAMs, expanded rows);
- ``arch.json``: the derived (argmax) architecture, written last and atomically.

Modes ``random`` and ``wrpn`` need no super-net: they write ``arch.json`` straight away.

Example (library use, on your own data)::

    from nce_tf.jobs.search import run_search
    from nce_tf.search import SearchConfig
    from nce_tf.train import TrainConfig
    record = run_search(TrainConfig(workdir="runs/s", model="resnet20", w_bits=2, a_bits=2),
                        SearchConfig(search_warmup_epochs=20, search_epochs=200))
"""

import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from nce_tf import arch as arch_lib
from nce_tf import data, distribute
from nce_tf.errors import UsageError
from nce_tf.io_utils import atomic_write_json
from nce_tf.search import baselines
from nce_tf.search.candidates import capped, search_table
from nce_tf.search.derive import arch_record, derive_widths, fit_to_budget
from nce_tf.search.callbacks import tau_at  # noqa: F401  (also this module's public name)
from nce_tf.search.expansion import expand
from nce_tf.search.supernet import Budget, SuperNet
from nce_tf.search.tensorboard import SearchTensorBoard
from nce_tf.sources import build_space
from nce_tf.train.checkpoint import RunState, all_finite, check_settings, remove_outputs
from nce_tf.train.config import DEFAULT_MODEL, model_fingerprint, prepare_workdir
from nce_tf.train.schedule import warmup_cosine


def check_budget(space, table, k_caps, budget):
    """One-line error when no architecture of the space can meet the budget's limits."""
    idx = np.arange(len(table))
    low = space.exact_cost([int(w) for w in table[idx, 0]])
    high = space.exact_cost([int(w) for w in table[idx, np.asarray(k_caps) - 1]])
    (f_lo, f_hi), (_, p_hi) = budget.limits()
    orig_f, orig_p = budget.original
    if low[0] > f_hi or high[0] < f_lo:
        raise UsageError(
            f"No architecture in the search space meets the FLOPs budget. Received: flops_ratio={budget.flops_ratio}. "
            f"Allowed: a band [{f_lo / orig_f:.3f}, {f_hi / orig_f:.3f}] of the original that meets "
            f"[{low[0] / orig_f:.3f}, {high[0] / orig_f:.3f}] (every layer at its narrowest / widest candidate).")
    if low[1] > p_hi:
        raise UsageError(
            f"No architecture in the search space meets the PARAMs bound. Received: params_ratio={budget.params_ratio}. "
            f"Allowed: params_ratio >= {low[1] / orig_p:.3f} (every layer at its narrowest candidate), or 0.")


def split_halves(source, seed):
    """The weight half and the architecture half of the training split (per class, 50/50)."""
    if source.train_arrays is not None:
        x, y = source.train_arrays
        idx_w, idx_a = data.split_per_class(y, fraction=0.5, seed=seed)
        make = lambda i: tf.data.Dataset.from_tensor_slices((x[i], y[i]))  # noqa: E731
        return make(idx_w), make(idx_a), len(idx_w)
    labels = np.fromiter((int(lbl) for _, lbl in source.train.as_numpy_iterator()), "int64")
    idx_w, _ = data.split_per_class(labels, fraction=0.5, seed=seed)
    in_w = np.zeros(len(labels), bool)
    in_w[idx_w] = True
    table = tf.constant(in_w)
    tagged = source.train.enumerate()
    pick = lambda want: tagged.filter(lambda i, e: tf.equal(table[i], want)).map(lambda i, e: e)  # noqa: E731
    return pick(True), pick(False), int(in_w.sum())


class _SearchMonitor(keras.callbacks.Callback):
    """Per epoch: tau, expansion, the log line and the JSONL record, the checkpoint."""

    def __init__(self, net, scfg, seed, steps, log_path, state, verbose):
        super().__init__()
        self.net, self.scfg, self.seed, self.steps = net, scfg, seed, steps
        self.log_path, self.state, self.verbose = log_path, state, verbose
        self.last_good = None
        self.expanded_epoch = []
        self.epoch = 0
        self.started = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.expanded_epoch = []
        self.net.tau.assign(tau_at(epoch, self.scfg.search_epochs, self.scfg.tau_max, self.scfg.tau_min,
                                   first=self.scfg.search_warmup_epochs))

    def on_train_batch_end(self, batch, logs=None):
        every = self.scfg.expand_every_steps
        if self._expanding() and every and (batch + 1) % every == 0:
            self._expand(self.epoch * self.steps + batch + 1)

    def _expanding(self):
        return self.net.mode == "nce" and self.net.arch_updates

    def _expand(self, step):
        self.expanded_epoch += expand(self.net, self.scfg.threshold, seed=self.seed, step=step)

    def on_epoch_end(self, epoch, logs=None):
        if self._expanding():
            self._expand((epoch + 1) * self.steps)
        record = self.record(epoch, logs or {})
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        # Only a finite state is checkpointed: a diverged search keeps its last good epoch.
        if np.isfinite(record.get("loss", 0.0)) and all_finite(self.net.weights):
            self.state.save(epoch + 1)
            self.last_good = epoch + 1
        if self.verbose:
            print(self.line(record), flush=True)

    def record(self, epoch, logs):
        net = self.net
        cost = {k: float(v) for k, v in net.cost_terms().items()}
        k = net.num_candidates.numpy()
        probs = net.probs().numpy()
        return {
            "epoch": epoch + 1, "phase": "search" if net.arch_updates else "warmup",
            "tau": float(net.tau.numpy()), **{k_: float(v) for k_, v in logs.items()}, **cost,
            "target_macs": net.budget.targets[0], "target_params": net.budget.targets[1],
            "argmax_widths": [int(w) for w in net.argmax_widths().numpy()],
            "num_candidates": k.tolist(), "expanded_rows": sorted(set(self.expanded_epoch)),
            "layers_expanded": int((k > 8).sum()) if net.mode == "nce" else 0,
            "probs": [[round(float(p), 5) for p in row[:kk]] for row, kk in zip(probs, k)],
            **{f"alpha_grad_{part}": g for part, g in net.take_alpha_grads().items()},
            "elapsed_seconds": round(time.time() - self.started, 1),
        }

    def line(self, r):
        m = lambda v: f"{v / 1e6:.2f}M"  # noqa: E731
        parts = [f"search epoch {r['epoch']}/{self.scfg.total_epochs} [{r['phase']}] tau {r['tau']:.2f}",
                 f"loss {r.get('loss', float('nan')):.3f} acc {r.get('accuracy', float('nan')):.3f}"]
        if r["phase"] == "search":
            parts.append(f"arch loss {r.get('arch_loss', float('nan')):.3f} acc {r.get('arch_accuracy', 0):.3f} "
                         f"cost loss {r.get('cost_loss', 0):+.2f}")
            parts.append("wider wanted by CE {} / cost {} of {} rows".format(
                *(_wider_rows(r.get(f"alpha_grad_{p}") or []) for p in ("ce", "cost")), len(r["num_candidates"])))
        parts.append(f"MACs E {m(r['expected_macs'])} argmax {m(r['argmax_macs'])} / {m(r['target_macs'])}")
        parts.append(f"params E {m(r['expected_params'])} argmax {m(r['argmax_params'])} / {m(r['target_params'])}")
        parts.append(f"expanded layers {r['layers_expanded']} (+{len(r['expanded_rows'])} this epoch)")
        return " | ".join(parts)


# Everything a search writes: what --overwrite removes before starting afresh.
OUTPUTS = ("search_config.json", "search", "search_log.jsonl", "arch.json", os.path.join("tensorboard", "search"))


def search_settings(tcfg, scfg):
    """The settings that define a search's result (saved in ``search_config.json``)."""
    settings = {"model": tcfg.model or DEFAULT_MODEL, **tcfg.run_settings(), **scfg.to_dict()}
    return {**settings, **model_fingerprint(settings["model"])}


def check_resumable(workdir, tcfg, scfg):
    """``True`` if ``workdir`` holds a search with these settings; refuses other settings unless overwriting."""
    return check_settings(os.path.join(workdir, "search_config.json"), search_settings(tcfg, scfg),
                          tcfg.overwrite, "search")


def run_search(train_config, search_config, verbose=True, strategy=None):
    """Runs the configured search and writes the work directory (see the module doc).

    Args:
        train_config: a :class:`nce_tf.train.TrainConfig` (model, data, bits, seed, weight decay,
            SGD momentum; ``workdir``).
        search_config: a :class:`nce_tf.search.SearchConfig`.
        verbose: print one progress line per epoch.
        strategy: a ``tf.distribute.Strategy``; default: the one ``train_config.strategy``
            names (:func:`nce_tf.distribute.get_strategy`).

    Returns:
        The record written to ``arch.json`` (with ``model`` and ``widths``).
    """
    tcfg, scfg = train_config.validate(), search_config.validate()
    # The strategy comes first: --cpu_replicas must configure devices before any op runs.
    strategy = strategy or distribute.get_strategy(tcfg.strategy, tcfg.cpu_replicas)
    if tcfg.arch:
        raise UsageError(f"A search starts from a zoo model, not an architecture file. Received: arch={tcfg.arch!r}.")
    model = tcfg.model or DEFAULT_MODEL
    policy = tcfg.policy()
    source = data.source_for(tcfg, scfg.search_dataset)
    info = source.info
    space = build_space(model, lane=scfg.lane, num_classes=info.num_classes, input_shape=info.image_shape)
    budget = Budget(space.exact_cost(space.default_widths()), scfg.flops_ratio, scfg.params_ratio,
                    scfg.tolerance, scfg.lambda_flops, scfg.lambda_params, scfg.tolerance_above)
    table, _, k_caps = search_table(space, scfg.mode, scfg.tas_space, scfg.width_ratios)
    check_budget(space, table, k_caps, budget)
    if scfg.mode not in ("random", "wrpn"):  # checked before anything is written
        ds_w, ds_a, n_w = split_halves(source, scfg.split_seed)
        batch = scfg.search_batch_size
        distribute.check_global_batch(strategy, batch, "search_batch_size")
        steps = scfg.search_steps_per_epoch or n_w // batch
        if steps < 1:
            raise UsageError(f"search_batch_size is larger than the weight half of the training set. "
                             f"Received: search_batch_size={batch}, weight-half examples={n_w}.")
        if batch * scfg.arch_steps > n_w:
            raise UsageError(f"The architecture steps of one search step need more images than the architecture "
                             f"half holds. Received: search_batch_size={batch}, arch_steps={scfg.arch_steps}, "
                             f"half examples={n_w}. Allowed: search_batch_size * arch_steps <= {n_w}.")
    workdir = prepare_workdir(tcfg.workdir)
    resuming = check_resumable(workdir, tcfg, scfg)
    config_path = os.path.join(workdir, "search_config.json")
    if not resuming:
        if tcfg.overwrite and os.path.exists(config_path):
            remove_outputs(workdir, OUTPUTS)  # only a search nce-tf wrote (it has a search_config.json)
    arch_path = os.path.join(workdir, "arch.json")
    grid = {"width_ratios": scfg.width_ratios, "lane": scfg.lane,
            "candidates": [[int(w) for w in row[:cap]] for row, cap in zip(table, k_caps)]}
    extra = {"dataset": info.name, "seed": tcfg.seed, "width_grid": grid}

    if scfg.mode in ("random", "wrpn"):
        if not resuming:
            atomic_write_json(config_path, search_settings(tcfg, scfg))
        widths = (baselines.random_widths(space, budget, seed=tcfg.seed, table=table, k_caps=k_caps)
                  if scfg.mode == "random"
                  else baselines.wrpn_widths(space, budget))
        record = _write_arch(arch_path, space, widths, policy=policy, budget=budget, settings=scfg.to_dict(), **extra)
        if verbose:
            print(f"nce-tf: {scfg.mode} widths {widths}: {record['macs'] / 1e6:.2f}M MACs, "
                  f"{record['params'] / 1e6:.3f}M params -> {arch_path}", flush=True)
        return {"model": model, "widths": widths, **record}

    keras.utils.set_random_seed(tcfg.seed)
    total = scfg.total_epochs
    # Super-net, alpha and both optimizers are created in the strategy scope and built before
    # fit (tf_facts.md: a second optimizer built lazily in a distributed step fails).
    with strategy.scope():
        net = SuperNet(space, policy, mode=scfg.mode, tas_space=scfg.tas_space, budget=budget,
                       weight_decay=tcfg.weight_decay, seed=tcfg.seed, width_ratios=scfg.width_ratios)
        net.configure_optimizers(
            keras.optimizers.SGD(warmup_cosine(scfg.search_lr, total * steps, 0), momentum=tcfg.momentum,
                                 nesterov=tcfg.nesterov),
            keras.optimizers.Adam(scfg.arch_lr, beta_1=scfg.arch_beta1, beta_2=scfg.arch_beta2),
            arch_weight_decay=scfg.arch_weight_decay, arch_steps=scfg.arch_steps)
    # The Gumbel sampler's state is named explicitly: a keras SeedGenerator is not a tracked
    # attribute of the model, so without it a resumed search would redraw from the start.
    state = RunState(os.path.join(workdir, "search", "checkpoints"), net=net,
                     weight_optimizer=net.weight_optimizer, arch_optimizer=net.arch_optimizer,
                     sampler_state=net.seed_generator.state)
    log_path = os.path.join(workdir, "search_log.jsonl")
    start = 0
    if resuming and state.latest:
        start = state.restore()[0]  # a bad checkpoint fails here, before anything is written
        _truncate_log(log_path, start)
        if verbose:
            print(f"nce-tf: resuming the search at epoch {start + 1} from {state.latest}", flush=True)
    elif os.path.exists(log_path):
        os.unlink(log_path)
    if not resuming:
        atomic_write_json(config_path, search_settings(tcfg, scfg))

    def stream(first, last):
        """Both halves' batches for epochs [first, last): epoch e's depend on (seed, e) alone (exact resume)."""
        half = lambda ds, seed, size: data.epoch_stream(ds, info, batch_size=size, seed=seed,  # noqa: E731
                                                        steps=steps, first_epoch=first, last_epoch=last)
        return distribute.shard_by_data(tf.data.Dataset.zip(
            (half(ds_w, tcfg.seed, batch), half(ds_a, tcfg.seed + 1, batch * scfg.arch_steps))))

    if verbose:
        print(f"nce-tf: searching {model} {tcfg.quant_name} ({scfg.mode}"
              f"{' ' + scfg.tas_space if scfg.mode == 'tas' else ''}) on {info.name}: "
              f"{len(space.rows)} rows, {scfg.search_warmup_epochs} warm-up + {scfg.search_epochs} search epochs "
              f"x {steps} steps of {batch} + {scfg.arch_steps} x {batch} images; target {budget.targets[0] / 1e6:.2f}M MACs"
              f"{f', {budget.targets[1] / 1e6:.3f}M params' if scfg.params_ratio else ''}; workdir {workdir}",
              flush=True)
    monitor = _SearchMonitor(net, scfg, tcfg.seed, steps, log_path, state, verbose)
    callbacks = [monitor, SearchTensorBoard(os.path.join(workdir, "tensorboard", "search")),
                 keras.callbacks.TerminateOnNaN()]
    phases = [(0, scfg.search_warmup_epochs, False), (scfg.search_warmup_epochs, total, True)]
    for first, last, arch_on in phases:
        if start >= last or first == last:
            continue
        net.set_arch_updates(arch_on)
        net.fit(stream(max(first, start), last), epochs=last, initial_epoch=max(first, start), steps_per_epoch=steps,
                callbacks=callbacks, verbose=0, shuffle=False)
        if net.stop_training or not all_finite(net.weights):
            kept = monitor.last_good or start
            raise UsageError(f"The search diverged (NaN or infinite loss). Received: search_lr={scfg.search_lr}, "
                             f"arch_lr={scfg.arch_lr}. "
                             + (f"The last good state (epoch {kept}) is kept in {state.directory}." if kept
                                else "No epoch finished, so no checkpoint was written."))
    argmax = derive_widths(net)
    probs = net.probs().numpy()
    widths = (fit_to_budget(space, capped(table, k_caps), probs, argmax, budget) if scfg.enforce_budget
              else argmax)
    if widths != argmax and verbose:
        print(f"nce-tf: the argmax widths {argmax} cost {space.exact_cost(argmax)} (MACs, params), outside the "
              f"budget band; moved into it with the least loss of probability", flush=True)
    record = _write_arch(
        arch_path, space, widths, policy=policy, budget=budget, settings=scfg.to_dict(),
        argmax_widths=argmax, budget_repaired=widths != argmax,
        num_candidates=net.num_candidates.numpy().tolist(),
        final_probs=[[float(p) for p in row[:k]] for row, k in zip(probs, net.num_candidates.numpy())],
        mean_search_widths=net.mean_widths(), **extra)
    if verbose:
        print(f"nce-tf: derived widths {widths}: {record['macs'] / 1e6:.2f}M MACs "
              f"({record['macs_ratio']:.3f} of the original), {record['params'] / 1e6:.3f}M params "
              f"({record['params_ratio']:.3f}) -> {arch_path}", flush=True)
    return {"model": model, "widths": widths, **record}


def _wider_rows(grads):
    """How many rows' gradient ranks wider candidates as more wanted (Kendall's tau > 0)."""
    from nce_tf.analysis.metrics import kendall_tau

    return sum(1 for g in grads if len(g) > 1 and any(g) and kendall_tau(range(len(g)), [-v for v in g]) > 0)


def _truncate_log(path, epochs):
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        lines = [ln for ln in f if ln.strip()][:epochs]
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(lines)


def _write_arch(path, space, widths, **record):
    """Writes ``arch.json`` (:func:`nce_tf.search.derive.arch_record`); returns the record."""
    record = arch_record(space, widths, **record)
    arch_lib.save_arch(path, space.model, widths, **record)
    return record
