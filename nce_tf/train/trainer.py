"""The training job: a zoo model (or an ``arch.json``) trained in float or WxAy QAT.

What a run writes into its work directory (see WORKSPACE.md):

- ``config.json``: the resolved settings, written first; a re-run with other settings is
  refused unless ``--overwrite`` (:mod:`nce_tf.train.checkpoint`);
- ``backup/`` (every epoch: model, optimizer with its step counter, epoch; a
  ``tf.train.CheckpointManager``) and ``checkpoints/last.weights.h5``: re-running the same
  command after a crash resumes from the last finished epoch, exactly (the data of an epoch
  depends on the seed and the epoch only), and a finished run just reports its metrics;
- ``tensorboard/``: TensorBoard logs; ``history.csv``: per-epoch metrics;
- ``model.keras``: the trained model (custom layers registered, loads in safe mode);
- ``cost.txt``: the per-layer cost table; ``metrics.json``: the results, written last
  and atomically, so its presence means the run finished.
"""

import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from nce_tf import arch as arch_lib
from nce_tf import cost, data, distribute, sources
from nce_tf.errors import UsageError
from nce_tf.io_utils import atomic_write_json, atomic_write_text
from nce_tf.train.checkpoint import RunState, all_finite, check_settings, remove_outputs
from nce_tf.train.config import DEFAULT_MODEL, model_fingerprint, prepare_workdir
from nce_tf.train.schedule import warmup_cosine


def _model_and_widths(config):
    """The model name and width list: from ``arch`` if given (it must match ``model``)."""
    if config.arch:
        a = arch_lib.load_arch(config.arch, expected_model=config.model or None)
        return a.model, a.widths
    name = config.model or DEFAULT_MODEL
    return name, sources.default_widths(name)


def _width(layer):
    """A layer's output width if it has one to choose (conv filters, dense units), else ``None``."""
    return getattr(layer, "filters", None) or getattr(layer, "units", None)


def layer_signature(model):
    """What identifies a custom model's architecture across processes: each layer's class, and
    width where it has one (auto-generated layer names differ from one process to the next)."""
    return [[type(layer).__name__, _width(layer)] for layer in model.layers]


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


# Everything a training run writes: what --overwrite removes before starting afresh.
OUTPUTS = ("config.json", "cost.txt", "backup", "checkpoints", "tensorboard", "history.csv", "model.keras",
           "metrics.json")


class _Checkpointer(keras.callbacks.Callback):
    """Saves the run state after every epoch, only from a finite state (a diverged run keeps its last good one)."""

    def __init__(self, state, weights_path):
        super().__init__()
        self.state, self.weights_path = state, weights_path
        self.last_good = None

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss", 0.0)
        if not np.isfinite(loss) or not all_finite(self.model.weights):
            return
        self.state.save(epoch + 1)
        tmp = self.weights_path.replace(".weights.h5", ".tmp.weights.h5")
        self.model.save_weights(tmp)
        os.replace(tmp, self.weights_path)
        self.last_good = epoch + 1


def _truncate_csv(path, rows):
    """Keeps the header and the first ``rows`` epochs of ``history.csv`` (a resumed run re-logs the rest)."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    atomic_write_text(path, "".join(lines[: rows + 1]) if rows else "")


def _last_csv_value(path, key):
    import csv

    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return float(rows[-1][key]) if rows and key in rows[-1] else float("nan")


def run_training(config, strategy=None, model_fn=None):
    """Trains the configured model and writes the work directory.

    Args:
        config: a :class:`nce_tf.train.TrainConfig`.
        strategy: a ``tf.distribute.Strategy``; default: the one ``config.strategy`` names
            (:func:`nce_tf.distribute.get_strategy`).
        model_fn: trains the model this returns instead of a zoo model (called inside the
            strategy scope with ``input_shape``, ``num_classes``, ``policy``, ``weight_decay``);
            e.g. ``lambda **kw: nce_tf.derive_model(net, policy=kw["policy"],
            weight_decay=kw["weight_decay"])`` for an adapted model.

    Returns:
        The metrics dict also written to ``metrics.json``.
    """
    config.validate()
    # The strategy comes first: --cpu_replicas must configure devices before any op runs.
    strategy = strategy or distribute.get_strategy(config.strategy, config.cpu_replicas)
    distribute.check_global_batch(strategy, config.batch_size)
    # Every input is checked before the work directory is created or touched.
    model_name, widths = ("custom", None) if model_fn is not None else _model_and_widths(config)
    source = data.source_for(config)
    info = source.info
    steps = _steps_per_epoch(config, info)
    keras.utils.set_random_seed(config.seed)
    schedule = warmup_cosine(config.lr, config.epochs * steps, config.warmup_epochs * steps)
    # Model and optimizer live in the strategy scope and the optimizer is built before fit,
    # so the checkpoint can restore its slots and step counter (tf_facts.md). They are built
    # before the work directory is touched: a model_fn that fails leaves nothing behind, and a
    # custom model's layer signature goes into config.json so a re-run with another model is refused.
    with strategy.scope():
        if model_fn is not None:
            model = model_fn(input_shape=info.image_shape, num_classes=info.num_classes, policy=config.policy(),
                             weight_decay=config.weight_decay)
            if not isinstance(model, keras.Model):
                raise UsageError(f"model_fn must return a keras.Model. Received: {type(model).__name__}.")
            widths = [int(w) for _, w in layer_signature(model) if w is not None]
        else:
            model = sources.build_model(
                model_name, widths, policy=config.policy(), input_shape=info.image_shape,
                num_classes=info.num_classes, weight_decay=config.weight_decay,
            )
        optimizer = keras.optimizers.SGD(schedule, momentum=config.momentum, nesterov=config.nesterov)
        model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        optimizer.build(model.trainable_variables)
    workdir = prepare_workdir(config.workdir)
    settings = {**config.run_settings(), "resolved_model": model_name, "widths": widths,
                **model_fingerprint(model_name)}
    if model_fn is not None:
        settings["layers"] = layer_signature(model)
    config_path = os.path.join(workdir, "config.json")
    metrics_path = os.path.join(workdir, "metrics.json")
    resuming = check_settings(config_path, settings, config.overwrite, "training run")
    if resuming and os.path.exists(metrics_path):
        with open(metrics_path, encoding="utf-8") as f:
            metrics = json.load(f)
        print(f"nce-tf: this training run has finished already -> {metrics_path}", flush=True)
        return metrics

    state = RunState(os.path.join(workdir, "backup"), model=model, optimizer=optimizer)
    start = state.restore()[0] if resuming else 0  # a bad checkpoint fails here, before any write
    if not resuming:
        if config.overwrite and os.path.exists(config_path):
            remove_outputs(workdir, OUTPUTS)  # only a run nce-tf wrote (it has a config.json)
        atomic_write_json(config_path, settings)
    model_cost = cost.count_model(model)
    atomic_write_text(os.path.join(workdir, "cost.txt"), cost.summary(model_cost) + "\n")
    print(f"nce-tf: training {model_name} {config.quant_name} on {info.name} "
          f"({info.num_train or '?'} train / {info.num_test or '?'} test images, {info.num_classes} classes): "
          f"{model_cost.macs / 1e6:.2f}M MACs, {model_cost.params / 1e6:.3f}M params, "
          f"{config.epochs} epochs x {steps} steps"
          f"{f', {strategy.num_replicas_in_sync} replicas' if strategy.num_replicas_in_sync > 1 else ''}, "
          f"workdir {workdir}" + (f" (resuming at epoch {start + 1})" if start else ""), flush=True)

    os.makedirs(os.path.join(workdir, "checkpoints"), exist_ok=True)
    csv_path = os.path.join(workdir, "history.csv")
    _truncate_csv(csv_path, start)
    checkpointer = _Checkpointer(state, os.path.join(workdir, "checkpoints", "last.weights.h5"))
    # The checkpoint comes last at each epoch's end: a run killed between two callbacks then has
    # its history row without the checkpoint (the resume re-logs that epoch after truncating),
    # never a checkpoint without its row (measured: a kill under load lost epoch 1's row).
    callbacks = [
        keras.callbacks.TensorBoard(os.path.join(workdir, "tensorboard"), update_freq="epoch"),
        keras.callbacks.CSVLogger(csv_path, append=True),
        keras.callbacks.TerminateOnNaN(),
        checkpointer,
    ]
    # Epoch e's batches depend on (seed, e) only: a resumed run sees what an uninterrupted one sees.
    train_ds = distribute.shard_by_data(data.epoch_stream(
        source.train, info, batch_size=config.batch_size, seed=config.seed, steps=steps,
        first_epoch=start, last_epoch=config.epochs))
    test_ds = distribute.shard_by_data(
        data.make_pipeline(source.test, info, training=False, batch_size=config.batch_size))
    start_time = time.time()
    history = {}
    if start < config.epochs:
        history = model.fit(train_ds, epochs=config.epochs, initial_epoch=start, steps_per_epoch=steps,
                            callbacks=callbacks, verbose=config.verbose, shuffle=False).history
    train_seconds = time.time() - start_time
    if not np.isfinite(history.get("loss", [0.0])[-1]) or not all_finite(model.weights):
        kept = checkpointer.last_good or start
        raise UsageError(f"Training loss became NaN or infinite; try a smaller --lr. Received: lr={config.lr}. "
                         + (f"The last good state (epoch {kept}) is kept in {state.directory}."
                            if kept else "No epoch finished, so no checkpoint was written."))
    test_loss, test_accuracy = model.evaluate(test_ds, verbose=0)

    model_path = os.path.join(workdir, "model.keras")
    model.save(model_path + ".tmp.keras")
    os.replace(model_path + ".tmp.keras", model_path)
    final_accuracy = history["accuracy"][-1] if history.get("accuracy") else _last_csv_value(csv_path, "accuracy")
    metrics = {
        "model": model_name, "widths": widths, "dataset": info.name, "num_classes": info.num_classes,
        "w_bits": config.w_bits, "a_bits": config.a_bits, "weight_quantizer": config.weight_quantizer,
        "epochs": config.epochs, "steps_per_epoch": steps,
        "test_accuracy": float(test_accuracy), "test_loss": float(test_loss),
        "final_train_accuracy": float(final_accuracy),
        "macs": model_cost.macs, "params": model_cost.params,
        "weight_memory_bytes": model_cost.memory_bytes, "train_seconds": round(train_seconds, 1),
        "replicas": strategy.num_replicas_in_sync,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    atomic_write_json(metrics_path, metrics)
    print("nce-tf: " + json.dumps({k: metrics[k] for k in ("test_accuracy", "macs", "params")})
          + f" -> {workdir}/metrics.json", flush=True)
    return metrics
