"""The training job: a zoo model (or an ``arch.json``) trained in float or WxAy QAT.

What a run writes into its work directory (see WORKSPACE.md):

- ``config.json``: the resolved settings, written first; a re-run with other settings is
  refused unless ``--overwrite`` (:mod:`nce_tf.jobs.checkpoint`);
- ``backup/`` (every epoch: model, optimizer with its step counter, epoch; a
  ``tf.train.CheckpointManager``) and ``checkpoints/last.weights.h5``: re-running the same
  command after a crash resumes from the last finished epoch, exactly (the data of an epoch
  depends on the seed and the epoch only), and a finished run just reports its metrics;
- ``tensorboard/``: TensorBoard logs; ``history.csv``: per-epoch metrics;
- ``model.keras``: the trained model (custom layers registered, loads in safe mode; the student
  of a distilled run, never its teacher);
- ``cost.txt``: the per-layer cost table; ``metrics.json``: the results with their provenance
  (:mod:`nce_tf.provenance`: commit, versions, time per phase over every sitting), written last
  and atomically, so its presence means the run finished;
- ``times.json``: the time per phase summed over the run's sittings, rewritten every epoch.

A run may start from a trained float network (``init_from``, ``pact_init``:
:mod:`nce_tf.train.float_init`) and distil from a teacher (``teacher``, ``kd_weight``,
``kd_temperature``: :mod:`nce_tf.train.distill`); both are read before the work directory is
touched, their files' SHA-256 are part of the run's settings, and ``metrics.json`` records them.
"""

import csv
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from nce_tf import arch as arch_lib
from nce_tf import cost, data, distribute, seeds, sources
from nce_tf.errors import UsageError
from nce_tf.io_utils import atomic_write_json, atomic_write_text
from nce_tf.jobs.lifecycle import Job, run_job
from nce_tf.sources.user import load_keras_file
from nce_tf.train.config import DEFAULT_MODEL, model_fingerprint
from nce_tf.train.distill import Distiller, load_teacher
from nce_tf.train.float_init import calibrate_pact, describe_source, load_float_weights
from nce_tf.train.schedule import sgd, warmup_cosine


def _arch_of(config, arch):
    """``arch`` if given, else ``config.arch``'s file loaded (it must match ``config.model``), else None."""
    if arch is None and config.arch:
        return arch_lib.load_arch(config.arch, expected_model=config.model or None)
    return arch


def _model_and_widths(config, arch):
    """The model name and width list: of the arch (:func:`_arch_of`) if there is one, else
    ``config.model``'s default widths."""
    if arch is not None:
        return arch.model, arch.widths
    name = config.model or DEFAULT_MODEL
    return name, sources.default_widths(name)


def _structure(arch):
    """Where the trained widths came from: ``"original"``, or the mode of the search whose arch it is
    (read when the training starts, so a record never depends on that file staying where it was)."""
    if arch is None:
        return "original"
    return (arch.extra.get("search") or {}).get("mode") or "arch"


def _width(layer):
    """A layer's output width if it has one to choose (conv filters, dense units), else ``None``."""
    return getattr(layer, "filters", None) or getattr(layer, "units", None)


def layer_signature(model):
    """What identifies a custom model's architecture across processes: each layer's class, and
    width where it has one (auto-generated layer names differ from one process to the next)."""
    return [[type(layer).__name__, _width(layer)] for layer in model.layers]


def build_compiled_state(model, image_shape=None):
    """Builds a compiled model's loss and metrics eagerly, on two blank images (of ``image_shape``,
    default the model's input shape), then resets them.

    Without a distribution strategy Keras 3 builds them inside the first trace of ``train_step``,
    and a ``tf.function`` that creates variables on its first call is traced again without them:
    ``fit`` traced the step twice, a third of a short run's time (tests/test_lifecycle.py pins the
    single trace).  Under a strategy Keras builds them itself before tracing; nothing is done then.
    """
    if tf.distribute.has_strategy():
        return
    x = np.zeros((2, *(image_shape or model.input_shape[1:])), "float32")
    y = np.zeros((2,), "int64")
    y_pred = model(x, training=False)
    model.compute_loss(x, y, y_pred)
    model.compute_metrics(x, y, y_pred)
    model.reset_metrics()


def _steps_per_epoch(config, info):
    if config.steps_per_epoch:
        return config.steps_per_epoch
    if not info.num_train:
        raise UsageError(
            f"The size of dataset {config.dataset!r} is unknown. Received: steps_per_epoch=0. "
            "Pass --steps_per_epoch=N."
        )
    steps = info.num_train // config.batch_size
    if steps < 1:
        raise UsageError(
            f"batch_size is larger than the training set. Received: batch_size={config.batch_size}, "
            f"training examples={info.num_train}."
        )
    return steps


# Training batches whose activations set the PACT clips with --pact_init=stats (the first ones of epoch 0).
PACT_STATS_BATCHES = 4

# Everything a training run writes: what --overwrite removes before starting afresh.
OUTPUTS = ("config.json", "cost.txt", "backup", "checkpoints", "tensorboard", "history.csv", "model.keras",
           "metrics.json", "times.json")


def _kernel_shapes(model):
    """``{layer name: kernel shape}`` of the layers with a kernel (a narrower layer loads whole, yet differs)."""
    return {layer.name: tuple(layer.kernel.shape) for layer in model.layers
            if getattr(layer, "kernel", None) is not None}


class TrainingResult(dict):
    """The metrics of a training run (what ``metrics.json`` holds), and the trained network's cost.

    Attributes:
        cost: the :class:`~nce_tf.cost.ModelCost` of the network trained (per-layer rows included),
            counted on the built model at the run's input shape and classes.
    """

    def __init__(self, metrics, model_cost):
        super().__init__(metrics)
        self.cost = model_cost


class _Training(Job):
    """A training run: the model, its SGD, and ``fit`` over the epochs (see :func:`run_training`)."""

    kind, settings_file, state_directory = "training run", "config.json", "backup"
    epoch_log, epoch_log_header = "history.csv", 1
    weights_file = os.path.join("checkpoints", "last.weights.h5")
    outputs = OUTPUTS

    def __init__(self, config, model_fn=None, arch=None):
        super().__init__(config.validate())
        self.model_fn, self.arch = model_fn, arch

    def prepare(self, strategy):
        config = self.config
        distribute.check_global_batch(strategy, config.batch_size)
        # the arch trained (given in memory, or --arch's file), apart from self.arch: settings record only the former
        self.trained_arch = _arch_of(config, self.arch) if self.model_fn is None else None
        self.name, self.widths = (("custom", None) if self.model_fn is not None
                                  else _model_and_widths(config, self.trained_arch))
        self.source = sources.source_for(config)
        self.info = self.source.info
        self.steps = _steps_per_epoch(config, self.info)
        # The float network and the teacher: their files checked, described for metrics.json.
        self.init_from = describe_source(config.init_from, "init_from") if config.init_from else None
        self.teacher = describe_source(config.teacher, "teacher") if config.teacher else None

    def global_seed(self):
        # The initial weights draw from the global generators: seeded by the training seed *and* the
        # structure, two structures trained with one seed do not start from the same kernels in their
        # same-shape convs (a study trains every structure with the same training seeds). A model_fn's
        # widths are unknown before it is built: its structures share the seed's stream.
        return seeds.structure_seed(self.config.seed, self.name, self.widths)

    def build(self):
        config, info = self.config, self.info
        schedule = warmup_cosine(config.lr, config.epochs * self.steps, config.warmup_epochs * self.steps)
        if self.model_fn is not None:
            model = self.model_fn(input_shape=info.image_shape, num_classes=info.num_classes, policy=config.policy(),
                                  weight_decay=config.weight_decay)
            if not isinstance(model, keras.Model):
                raise UsageError(f"model_fn must return a keras.Model. Received: {type(model).__name__}.")
            self.widths = [int(w) for _, w in layer_signature(model) if w is not None]
        else:
            model = sources.build_model(self.name, self.widths, policy=config.policy(), input_shape=info.image_shape,
                                        num_classes=info.num_classes, weight_decay=config.weight_decay)
        self._initialise(model)
        optimizer = sgd(config, schedule)
        model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        # Under mixed_float16 compile wrapped the SGD in a LossScaleOptimizer: that is the optimizer of
        # fit, built here and checkpointed (its loss scale with it), and the distiller's (not wrapped twice).
        optimizer = model.optimizer
        optimizer.build(model.trainable_variables)
        build_compiled_state(model)
        self.trainer = None
        if self.teacher:  # the student trains inside a Distiller; the run state stays the student's
            teacher = load_teacher(self.teacher["file"], info.image_shape, info.num_classes)
            self.trainer = Distiller(model, teacher, config.kd_weight, config.kd_temperature, name="distiller")
            self.trainer.compile(optimizer=optimizer, metrics=["accuracy"])
            build_compiled_state(self.trainer, info.image_shape)
        self.model, self.cost = model, cost.count_model(model)
        return {"model": model, "optimizer": optimizer}

    def _initialise(self, model):
        """Float weights (``init_from``), then PACT clips from statistics (``pact_init=stats``)."""
        config = self.config
        other_widths = False
        if self.init_from:
            received = f"init_from={config.init_from!r}"
            source = load_keras_file(self.init_from["file"], received)
            report = load_float_weights(model, source, received=received)
            self.init_from.update(partial=report["partial"], fresh=report["fresh"])
            other_widths = bool(report["partial"] or report["fresh"]) or _kernel_shapes(source) != _kernel_shapes(model)
        if config.pact_init == "stats":
            batches = data.make_pipeline(self.source.train, self.info, training=True, batch_size=config.batch_size,
                                         seed=config.seed, epoch=0).take(PACT_STATS_BATCHES)
            # At other widths than the checkpoint's, a narrower layer's consumers sum fewer channels than
            # their loaded BN moving statistics describe: read the sites with batch statistics instead
            # (as a compression does; calibrate_pact's doc).
            self.pact_clips = calibrate_pact(model, batches, seed=config.seed, training=other_widths)

    def settings(self):
        # An in-memory Arch is recorded as `--arch=ITS_FILE` records it, so the same command resumes the run.
        source = {"model": "", "arch": self.arch.path} if self.arch is not None else {}
        settings = {**self.config.run_settings(), **source, "resolved_model": self.name, "widths": self.widths,
                    **model_fingerprint(self.name)}
        for field, described in (("init_from", self.init_from), ("teacher", self.teacher)):
            if described:  # another file under the same path is another run
                settings[f"{field}_sha256"] = described["sha256"]
        if self.model_fn is not None:  # a custom model's layers, so a re-run with another model is refused
            settings["layers"] = layer_signature(self.model)
        return settings

    def finished(self, workdir):
        path = os.path.join(workdir, "metrics.json")
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as f:
            metrics = json.load(f)
        print(f"nce-tf: this training run has finished already -> {path}", flush=True)
        return TrainingResult(metrics, self.cost)

    def fit(self, run):
        config, info, model_cost = self.config, self.info, self.cost
        atomic_write_text(os.path.join(run.workdir, "cost.txt"), cost.summary(model_cost) + "\n")
        replicas = run.strategy.num_replicas_in_sync
        print(f"nce-tf: training {self.name} {config.quant_name} on {info.name} "
              f"({info.num_train or '?'} train / {info.num_test or '?'} test images, {info.num_classes} classes): "
              f"{model_cost.macs / 1e6:.2f}M MACs, {model_cost.params / 1e6:.3f}M params, "
              f"{config.epochs} epochs x {self.steps} steps{f', {replicas} replicas' if replicas > 1 else ''}, "
              + (f"from the float network {config.init_from}, " if config.init_from else "")
              + (f"distilled from {config.teacher} (w={config.kd_weight:g}, T={config.kd_temperature:g}), "
                 if config.teacher else "")
              + f"workdir {run.workdir}" + _resume_note(run.start, config.epochs), flush=True)
        # The history row comes before the checkpoint at each epoch's end (Run.fit puts the checkpoint
        # last): a run killed in between re-logs that epoch, never keeps a checkpoint without its row.
        callbacks = [keras.callbacks.TensorBoard(os.path.join(run.workdir, "tensorboard"), update_freq="epoch"),
                     keras.callbacks.CSVLogger(os.path.join(run.workdir, "history.csv"), append=True)]
        # Epoch e's batches depend on (seed, e) only: a resumed run sees what an uninterrupted one sees.
        stream = lambda first, last: distribute.shard_by_data(data.epoch_stream(  # noqa: E731
            self.source.train, info, batch_size=config.batch_size, seed=config.seed, steps=self.steps,
            first_epoch=first, last_epoch=last))
        self.test_ds = distribute.shard_by_data(
            data.make_pipeline(self.source.test, info, training=False, batch_size=config.batch_size))
        start_time = time.time()
        hint = (f"Training loss became NaN or infinite; try a smaller --lr or a --global_clipnorm. Received: "
                f"lr={config.lr}, global_clipnorm={config.global_clipnorm}.")
        self.history = run.fit(self.model, stream, 0, config.epochs, steps=self.steps, callbacks=callbacks,
                               verbose=config.verbose, hint=hint, trainer=self.trainer)
        self.train_seconds = time.time() - start_time

    def result(self, run):
        config, model, model_cost = self.config, self.model, self.cost
        test_loss, test_accuracy = model.evaluate(self.test_ds, verbose=0)
        model_path = os.path.join(run.workdir, "model.keras")
        model.save(model_path + ".tmp.keras")
        os.replace(model_path + ".tmp.keras", model_path)
        final_accuracy = (self.history["accuracy"][-1] if self.history.get("accuracy")
                          else _last_csv_value(os.path.join(run.workdir, "history.csv"), "accuracy"))
        metrics = {
            "model": self.name, "widths": self.widths, "structure": _structure(self.trained_arch),
            "dataset": self.info.name, "num_classes": self.info.num_classes,
            "w_bits": config.w_bits, "a_bits": config.a_bits, "weight_quantizer": config.weight_quantizer,
            "epochs": config.epochs, "steps_per_epoch": self.steps,
            "test_accuracy": float(test_accuracy), "test_loss": float(test_loss),
            "final_train_accuracy": float(final_accuracy),
            "macs": model_cost.macs, "params": model_cost.params,
            "weight_memory_bytes": model_cost.memory_bytes, "train_seconds": round(self.train_seconds, 1),
            "replicas": run.strategy.num_replicas_in_sync,
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        }
        if self.init_from:
            metrics["init_from"] = self.init_from
        if config.pact_init != "fixed":
            metrics["pact_init"] = {"kind": config.pact_init, "initial_clips": self.pact_clips}
        if self.teacher:  # not counted in macs / params: those are the student's
            metrics["teacher"] = {**self.teacher, "kd_weight": config.kd_weight,
                                  "kd_temperature": config.kd_temperature}
        metrics["provenance"] = run.provenance()  # commit, versions, times of every sitting
        metrics_path = os.path.join(run.workdir, "metrics.json")
        atomic_write_json(metrics_path, metrics)
        print("nce-tf: " + json.dumps({k: metrics[k] for k in ("test_accuracy", "macs", "params")})
              + f" -> {metrics_path}", flush=True)
        return TrainingResult(metrics, model_cost)


def _last_csv_value(path, key):
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return float(rows[-1][key]) if rows and key in rows[-1] else float("nan")


def _resume_note(start, epochs):
    """What the start line says of a resumed run (a run killed after its last epoch's checkpoint
    has no epoch left: it only evaluates and saves)."""
    if start >= epochs:
        return f" (all {epochs} epochs done: evaluating and saving)"
    return f" (resuming at epoch {start + 1})" if start else ""


def run_training(config, strategy=None, model_fn=None, arch=None):
    """Trains the configured model and writes the work directory (see the module doc).

    Args:
        config: a :class:`nce_tf.train.TrainConfig`.
        strategy: a ``tf.distribute.Strategy``; default: the one ``config.strategy`` names
            (:func:`nce_tf.distribute.get_strategy`).
        model_fn: trains the model this returns instead of a zoo model (called inside the
            strategy scope with ``input_shape``, ``num_classes``, ``policy``, ``weight_decay``);
            e.g. ``lambda **kw: nce_tf.derive_model(net, policy=kw["policy"],
            weight_decay=kw["weight_decay"])`` for an adapted model.
        arch: an :class:`nce_tf.arch.Arch` to train instead of ``config.model`` / ``config.arch``
            (e.g. a search's, in memory); ``config.json`` records it as ``--arch=`` its file
            (``arch.path``) would, so that command resumes the run.

    Returns:
        A :class:`TrainingResult`: the metrics dict also written to ``metrics.json``, with the
        trained network's cost as ``.cost``.

    Example::

        metrics = run_training(TrainConfig(workdir="runs/r8", model="resnet8", epochs=2))
        metrics["test_accuracy"], metrics.cost.macs
    """
    return run_job(_Training(config, model_fn, arch), strategy)
