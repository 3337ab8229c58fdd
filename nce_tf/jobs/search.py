"""The search job behind ``tools/search.py``: warm-up, bi-level search with expansion, derivation.

What it writes into the work directory (see WORKSPACE.md):

- ``search_config.json``: the resolved training and search settings, written first;
- ``search/checkpoints/``: the whole search state every epoch (super-net weights, alpha,
  candidate counts, BN statistics, both optimizers (the architecture's as two Adams with
  ``--arch_balance=split``), tau, the sampler's random state, the epoch); re-running the same command resumes from the last finished epoch;
- ``search_log.jsonl``: one JSON line per epoch (phase, tau, losses, accuracies, per-row
  probabilities and candidate counts, expected and argmax MACs / PARAMs, expanded rows, the arch
  steps' instruments: :mod:`nce_tf.jobs.search_log`);
- ``arch.json``: the derived (argmax) architecture with its provenance (commit, versions, time
  per phase over every sitting; ``search/times.json`` keeps those times as they accrue), written
  last and atomically.

A method without a search (``random``, ``wrpn``: :mod:`nce_tf.search.methods`) needs no super-net: it
writes ``arch.json`` straight away.

The search is a :class:`~nce_tf.jobs.lifecycle.Job`: the lifecycle every job shares (settings
check, run state, finite-only checkpoints, the divergence error, resume) is
:func:`~nce_tf.jobs.lifecycle.run_job`'s; tau and expansion are the library's own callbacks
(:mod:`nce_tf.search.callbacks`), the log is :class:`~nce_tf.jobs.search_log.SearchLog`.

Example (library use, on your own data)::

    from nce_tf.jobs.search import run_search
    from nce_tf.search import SearchConfig
    from nce_tf.train import TrainConfig
    record = run_search(TrainConfig(workdir="runs/s", model="resnet20", w_bits=2, a_bits=2),
                        SearchConfig(search_warmup_epochs=20, search_epochs=200))
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from nce_tf import arch as arch_lib
from nce_tf import data, distribute, seeds, sources
from nce_tf.adapter.from_trained import load_trained_weights, pact_clips_from_stats
from nce_tf.errors import UsageError
from nce_tf.io_utils import atomic_write_text
from nce_tf.jobs.checkpoint import RunState, check_settings
from nce_tf.jobs.lifecycle import Job, run_job
from nce_tf.jobs.search_log import SearchLog, one_x_widths
from nce_tf.jobs.train import PACT_STATS_BATCHES
from nce_tf.search.callbacks import ChannelExpansion, TauSchedule
from nce_tf.search.expansion import check_threshold
from nce_tf.search.callbacks import tau_at  # noqa: F401  (also this module's public name)
from nce_tf.search.candidates import capped, search_table
from nce_tf.search.derive import arch_record, derive_widths, fit_to_budget
from nce_tf.search.methods import method_for
from nce_tf.search.single_path import train_single_paths
from nce_tf.search.supernet import SuperNet
from nce_tf.search.tensorboard import SearchTensorBoard
from nce_tf.search.config import SearchConfig
from nce_tf.search.units import Budget
from nce_tf.sources import build_space
from nce_tf.sources.user import load_keras_file
from nce_tf.train.config import (DEFAULT_MODEL, FINAL_TRAINING_FIELDS, SEARCH_START_FIELDS, TrainConfig,
                                 model_fingerprint)
from nce_tf.train.float_init import describe_source
from nce_tf.train.schedule import sgd, warmup_cosine


def check_budget(space, table, k_caps, budget):
    """One-line error when no architecture of the space can meet the budget's limits (every row at its
    narrowest and at its widest candidate: costs grow with every width)."""
    idx = np.arange(len(table))
    narrowest, widest = [int(w) for w in table[idx, 0]], [int(w) for w in table[idx, np.asarray(k_caps) - 1]]
    budget.check_reachable(space, narrowest, widest)


def _targets(budget):
    """The budget as the search's start line states it (``12.78M MACs, 0.078M params``)."""
    return ", ".join(text for text in (e.unit.target_text(e) for e in budget.entries) if text)


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


# Images of the architecture half each epoch's record measures the 1X sub-network on (SearchLog):
# a few batches, a forward each, so the instrument costs well under one search step per epoch.
PROBE_IMAGES = 512
SUPERNET_LOG = "supernet_training.json"  # per epoch, the single-path phase's loss and accuracy

# Everything a search writes: what --overwrite removes before starting afresh.
OUTPUTS = ("search_config.json", "search", "search_log.jsonl", "arch.json", os.path.join("tensorboard", "search"))


def search_settings(tcfg, scfg):
    """The settings that define a search's result (saved in ``search_config.json``): how the final
    training distils (``FINAL_TRAINING_FIELDS``) is not the search's, but where its weights start
    (``SEARCH_START_FIELDS``: ``init_from`` with its file's SHA-256, ``pact_init``) is."""
    training = {k: v for k, v in tcfg.run_settings().items()
                if k not in FINAL_TRAINING_FIELDS or k in SEARCH_START_FIELDS}
    settings = {"model": tcfg.model or DEFAULT_MODEL, **training, **scfg.to_dict()}
    if tcfg.init_from and method_for(scfg.mode).trains:  # another file under the same path is another search
        settings["init_from_sha256"] = describe_source(tcfg.init_from, "init_from")["sha256"]
    return {**settings, **model_fingerprint(settings["model"])}


def check_resumable(workdir, tcfg, scfg):
    """``True`` if ``workdir`` holds a search with these settings; refuses other settings unless overwriting."""
    return check_settings(os.path.join(workdir, "search_config.json"), search_settings(tcfg, scfg),
                          tcfg.overwrite, "search")


class _Search(Job):
    """A search: the super-net, its two optimizers, and the warm-up and search phases of ``fit``."""

    kind, settings_file = "search", "search_config.json"
    state_directory, epoch_log = os.path.join("search", "checkpoints"), "search_log.jsonl"
    times_file = os.path.join("search", "times.json")
    outputs = OUTPUTS

    def __init__(self, train_config, search_config, verbose):
        super().__init__(train_config.validate())
        self.scfg, self.verbose = search_config.validate(), verbose
        self.method = method_for(self.scfg.mode)

    @property
    def trains(self):
        return self.method.trains

    def prepare(self, strategy):
        tcfg, scfg = self.config, self.scfg
        if tcfg.arch:
            raise UsageError("A search starts from a zoo model, not an architecture file. "
                             f"Received: arch={tcfg.arch!r}.")
        self.model, self.policy = tcfg.model or DEFAULT_MODEL, tcfg.policy()
        source = sources.source_for(tcfg, scfg.search_dataset)
        self.info = source.info
        space = self.space = build_space(self.model, lane=scfg.lane, num_classes=self.info.num_classes,
                                         input_shape=self.info.image_shape)
        self.budget = Budget.from_config(space, scfg, self.policy)
        self.table, self.k_init, self.k_caps = search_table(space, scfg.mode, scfg.tas_space, scfg.width_ratios,
                                                            scfg.max_width_ratio)
        check_budget(space, self.table, self.k_caps, self.budget)
        if self.method.expands:
            check_threshold([row.name for row in space.rows], self.k_init, self.k_caps, scfg.threshold)
        if self.trains:
            self.ds_w, self.ds_a, n_w = split_halves(source, scfg.split_seed)
            self.steps = check_search_batches(strategy, scfg, n_w)
        # The trained network the super-net starts from: its file checked, described for arch.json.
        self.init_from = describe_source(tcfg.init_from, "init_from") if tcfg.init_from and self.trains else None
        if scfg.supernet_epochs and self.trains and strategy.num_replicas_in_sync > 1:
            raise UsageError(f"--supernet_epochs runs on one device. Received: supernet_epochs={scfg.supernet_epochs} "
                             f"with {strategy.num_replicas_in_sync} replicas. Allowed: 0, or one replica.")

    def settings(self):
        return search_settings(self.config, self.scfg)

    def build(self):
        if not self.trains:
            return {}
        tcfg, scfg = self.config, self.scfg
        net = self.net = SuperNet(self.space, self.policy, mode=scfg.mode, tas_space=scfg.tas_space,
                                  budget=self.budget, weight_decay=tcfg.weight_decay, seed=tcfg.seed,
                                  width_ratios=scfg.width_ratios, expansion_init=scfg.expansion_init,
                                  sawb_scope=scfg.sawb_scope, max_width_ratio=scfg.max_width_ratio,
                                  pair_merge=scfg.pair_merge)
        net.configure_optimizers(
            sgd(tcfg, warmup_cosine(scfg.search_lr, scfg.total_epochs * self.steps, 0)),
            keras.optimizers.Adam(scfg.arch_lr, beta_1=scfg.arch_beta1, beta_2=scfg.arch_beta2),
            arch_weight_decay=scfg.arch_weight_decay, arch_steps=scfg.arch_steps, arch_balance=scfg.arch_balance)
        self._initialise(net)
        # The Gumbel sampler's state is named explicitly: a keras SeedGenerator is not a tracked
        # attribute of the model, so without it a resumed search would redraw from the start.
        # A split balance's two Adams are two entries (a shared one's checkpoint keeps its old layout).
        arch = ({"arch_optimizer": net.arch_optimizer.ce, "arch_cost_optimizer": net.arch_optimizer.cost}
                if scfg.arch_balance == "split" else {"arch_optimizer": net.arch_optimizer})
        # The layers' BN running statistics are named too: without them a resumed search restarted
        # its statistics from their initial values.
        return {"net": net, "weight_optimizer": net.weight_optimizer, **arch, "sampler_state": net.seed_generator.state,
                "layer_statistics": net.statistics_variables()}

    def _initialise(self, net):
        """The trained network's weights (``init_from``), then PACT clips from statistics (``pact_init``).

        On a resumed search the checkpoint then overwrites them: the run state is the search's own.
        """
        tcfg = self.config
        if self.init_from:
            received = f"init_from={tcfg.init_from!r}"
            report = load_trained_weights(net, load_keras_file(self.init_from["file"], received), received=received)
            self.init_from.update(loaded=report["loaded"], channel_order="l1", copied_clips=report["clips"])
        if tcfg.pact_init == "stats":
            batches = data.make_pipeline(self.ds_w, self.info, training=True, batch_size=self.scfg.search_batch_size,
                                         seed=tcfg.seed, epoch=0).take(PACT_STATS_BATCHES)
            self.pact_clips = pact_clips_from_stats(net, [x for x, _ in batches.as_numpy_iterator()], seed=tcfg.seed)

    def fit(self, run):
        if not self.trains:
            return
        tcfg, scfg, net, steps, batch = self.config, self.scfg, self.net, self.steps, self.scfg.search_batch_size
        if self.verbose:
            if run.start:
                print(f"nce-tf: resuming the search at epoch {run.start + 1} from {run.state.latest}", flush=True)
            print(f"nce-tf: searching {self.model} {tcfg.quant_name} ({self.method.label(scfg)}) on {self.info.name}: "
                  f"{len(self.space.rows)} rows, {scfg.search_warmup_epochs} warm-up + {scfg.search_epochs} search "
                  f"epochs x {steps} steps of {batch} + {scfg.arch_steps} x {batch} images; target "
                  f"{_targets(self.budget)}; workdir {run.workdir}", flush=True)

        def stream(first, last):
            """Both halves' batches for epochs [first, last): epoch e's depend on (seed, e) alone (exact resume)."""
            half = lambda ds, seed, size: data.epoch_stream(ds, self.info, batch_size=size, seed=seed,  # noqa: E731
                                                            steps=steps, first_epoch=first, last_epoch=last)
            return distribute.shard_by_data(tf.data.Dataset.zip(
                (half(self.ds_w, seeds.stream_seed(tcfg.seed, "search/weight_data"), batch),
                 half(self.ds_a, seeds.stream_seed(tcfg.seed, "search/arch_data"), batch * scfg.arch_steps))))

        expansion = ChannelExpansion(scfg.threshold, scfg.expand_every_steps, seed=tcfg.seed)
        log = SearchLog(expansion, os.path.join(run.workdir, self.epoch_log), scfg.total_epochs, self.verbose,
                        probe=self.probe())
        callbacks = [TauSchedule(scfg.search_epochs, scfg.tau_max, scfg.tau_min, first_epoch=scfg.search_warmup_epochs),
                     expansion, log, SearchTensorBoard(os.path.join(run.workdir, "tensorboard", "search"), log)]
        hint = (f"The search diverged (NaN or infinite loss); try a smaller --search_lr or a --global_clipnorm. "
                f"Received: search_lr={scfg.search_lr}, arch_lr={scfg.arch_lr}, "
                f"global_clipnorm={tcfg.global_clipnorm}.")
        if scfg.supernet_epochs and run.start == 0:  # before the first epoch (a resumed search is past it)
            history = self._train_single_paths()
            atomic_write_text(os.path.join(run.workdir, SUPERNET_LOG), json.dumps(history))
        for first, last, arch_on in [(0, scfg.search_warmup_epochs, False),
                                     (scfg.search_warmup_epochs, scfg.total_epochs, True)]:
            if max(first, run.start) < last:
                net.set_arch_updates(arch_on)
                run.fit(net, stream, first, last, steps=steps, hint=hint, callbacks=callbacks)

    def _train_single_paths(self):
        """``--supernet_epochs`` of single-path steps on the weight half (nce_tf/search/single_path.py): each
        row at 1X with probability 1/2, else at another of its live candidates."""
        tcfg, scfg, net = self.config, self.scfg, self.net
        base = one_x_widths(net)
        live = [[int(c) for c in net.table_np[r, :k]] for r, k in enumerate(net.num_candidates.numpy())]
        options = [[c for c in row if c != b] for row, b in zip(live, base)]
        stream = seeds.stream_seed(tcfg.seed, "search/supernet_data")
        batches = lambda epoch: data.make_pipeline(  # noqa: E731
            self.ds_w, self.info, training=True, batch_size=self.scfg.search_batch_size, seed=stream,
            epoch=epoch).take(self.steps)
        return train_single_paths(net, batches, scfg.supernet_epochs, scfg.supernet_lr, base, options, tcfg.seed,
                                  verbose=self.verbose, global_clipnorm=tcfg.global_clipnorm or None)

    def probe(self):
        """The fixed slice of the architecture half the log measures the 1X sub-network on: its first
        :data:`PROBE_IMAGES` images in the split's order, not augmented, as one batch (the 1X forward runs
        eagerly once per epoch: one batch is a quarter of the eager ops of four; a tiny search took 20%
        longer with batches of 32)."""
        return data.make_pipeline(self.ds_a.take(PROBE_IMAGES), self.info, training=False, batch_size=PROBE_IMAGES)

    def result(self, run):
        space, scfg, budget = self.space, self.scfg, self.budget
        if self.trains:
            argmax = derive_widths(self.net)
            probs, k = self.net.probs().numpy(), self.net.num_candidates.numpy()
            widths = (fit_to_budget(space, capped(self.table, self.k_caps), probs, argmax, budget)
                      if scfg.enforce_budget else argmax)
            if widths != argmax and self.verbose:
                print(f"nce-tf: the argmax widths {argmax} cost {budget.costs(space, argmax)}, outside the budget "
                      f"band; moved into it with the least loss of probability", flush=True)
            found = dict(argmax_widths=argmax, budget_repaired=widths != argmax, num_candidates=k.tolist(),
                         final_probs=[[float(p) for p in row[:kk]] for row, kk in zip(probs, k)],
                         mean_search_widths=self.net.mean_widths())
            if self.init_from:
                found["init_from"] = self.init_from
            if scfg.supernet_epochs:
                with open(os.path.join(run.workdir, SUPERNET_LOG), encoding="utf-8") as f:
                    found["supernet_training"] = {"epochs": scfg.supernet_epochs, "lr": scfg.supernet_lr,
                                                  "history": json.load(f)}
            if self.config.pact_init != "fixed":
                found["pact_init"] = {"kind": self.config.pact_init, "initial_clips": self.pact_clips}
        else:
            found = {}
            widths = self.method.widths(space, budget, seed=self.config.seed, table=self.table, k_caps=self.k_caps)
        grid = {"width_ratios": scfg.width_ratios, "lane": scfg.lane,
                "candidates": [[int(w) for w in row[:cap]] for row, cap in zip(self.table, self.k_caps)],
                "initial_candidates": [int(k) for k in self.k_init]}
        path = os.path.join(run.workdir, "arch.json")
        record = arch_record(space, widths, policy=self.policy, budget=budget, settings=scfg.to_dict(), **found,
                             dataset=self.info.name, seed=self.config.seed, width_grid=grid)
        record["provenance"] = run.provenance()  # commit, versions, times of every sitting
        arch_lib.save_arch(path, space.model, widths, **record)
        if self.verbose:
            print(f"nce-tf: {'derived' if self.trains else scfg.mode} widths {widths}: {record['macs'] / 1e6:.2f}M "
                  f"MACs ({record['macs_ratio']:.3f} of the original), {record['params'] / 1e6:.3f}M params "
                  f"({record['params_ratio']:.3f}), {record['memory_bytes']:,.0f} bytes of weights "
                  f"({record['memory_ratio']:.3f}), {record['bops'] / 1e9:.3f}G BOPs ({record['bops_ratio']:.3f}) "
                  f"-> {path}", flush=True)
        return {"model": self.model, "widths": widths, **record}


def check_search_batches(strategy, scfg, n_w):
    """The steps per search epoch; one-line errors when the batches do not fit the weight half ``n_w``."""
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
    return steps


def restore_search(workdir):
    """The search of a work directory as its last checkpoint left it: the job, built from the settings the
    search recorded (``search_config.json``), with its super-net (``job.net``: weights, alpha, live
    candidates, BN statistics), optimizers and sampler restored. For reading a search's state after it ran
    (its trained super-net, what an expansion added); the job's data halves are ready (``job.ds_w``,
    ``job.ds_a``).

    Args:
        workdir: a search work directory with a checkpoint (``search/checkpoints``).

    Returns:
        ``(train_config, search_config, job)``.

    Raises:
        UsageError: no recorded settings, or no checkpoint, under ``workdir``.
    """
    path = os.path.join(workdir, "search_config.json")
    try:
        with open(path, encoding="utf-8") as f:
            settings = json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"Not a search work directory ({type(e).__name__}). Received: workdir={workdir!r}") from None
    scfg = SearchConfig.from_settings(settings)
    tcfg = TrainConfig.from_settings(settings, workdir=workdir, verbose=0)
    job = _Search(tcfg, scfg, verbose=False)
    job.prepare(tf.distribute.get_strategy())
    state = RunState(os.path.join(workdir, job.state_directory), **job.build())
    if state.latest is None:
        raise UsageError(f"No search checkpoint. Received: workdir={workdir!r} (nothing under {job.state_directory})")
    state.restore()
    return tcfg, scfg, job


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
    return run_job(_Search(train_config, search_config, verbose), strategy)
