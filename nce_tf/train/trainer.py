"""The training job: a zoo model (or an ``arch.json``) trained in float or WxAy QAT.

What a run writes into its work directory (see WORKSPACE.md):

- ``config.json``: the resolved settings, written first;
- ``checkpoints/last.weights.h5`` (every epoch) and ``backup/`` (Keras ``BackupAndRestore``:
  re-running the same command after a crash resumes from the last finished epoch);
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
from nce_tf import cost, data, models
from nce_tf.errors import UsageError
from nce_tf.io_utils import atomic_write_json, atomic_write_text
from nce_tf.train.config import DEFAULT_MODEL, prepare_workdir
from nce_tf.train.schedule import warmup_cosine


def _model_and_widths(config):
    """The model name and width list: from ``arch`` if given (it must match ``model``)."""
    if config.arch:
        a = arch_lib.load_arch(config.arch, expected_model=config.model or None)
        return a.model, a.widths
    name = config.model or DEFAULT_MODEL
    return name, models.default_widths(name)


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


def run_training(config):
    """Trains the configured model and writes the work directory.

    Args:
        config: a :class:`nce_tf.train.TrainConfig`.

    Returns:
        The metrics dict also written to ``metrics.json``.
    """
    config.validate()
    # Every input is checked before the work directory is created or touched.
    model_name, widths = _model_and_widths(config)
    source = data.get_source(
        config.dataset, tfds_data_dir=config.tfds_data_dir or None, seed=config.seed,
        synthetic_train_size=config.synthetic_train_size,
        synthetic_test_size=config.synthetic_test_size, subset_per_class=config.subset_per_class,
    )
    info = source.info
    steps = _steps_per_epoch(config, info)
    workdir = prepare_workdir(config.workdir)
    atomic_write_json(os.path.join(workdir, "config.json"),
                      {**config.to_dict(), "resolved_model": model_name, "widths": widths})

    keras.utils.set_random_seed(config.seed)
    train_ds = data.make_pipeline(source.train, info, training=True, batch_size=config.batch_size,
                                  seed=config.seed).repeat()
    test_ds = data.make_pipeline(source.test, info, training=False, batch_size=config.batch_size)

    model = models.build_model(
        model_name, widths, policy=config.policy(), input_shape=info.image_shape,
        num_classes=info.num_classes, weight_decay=config.weight_decay,
    )
    model_cost = cost.count_model(model)
    atomic_write_text(os.path.join(workdir, "cost.txt"), cost.summary(model_cost) + "\n")
    schedule = warmup_cosine(config.lr, config.epochs * steps, config.warmup_epochs * steps)
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=config.momentum, nesterov=config.nesterov),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    print(f"nce-tf: training {model_name} {config.quant_name} on {info.name} "
          f"({info.num_train or '?'} train / {info.num_test or '?'} test images, {info.num_classes} classes): "
          f"{model_cost.macs / 1e6:.2f}M MACs, {model_cost.params / 1e6:.3f}M params, "
          f"{config.epochs} epochs x {steps} steps, workdir {workdir}", flush=True)

    os.makedirs(os.path.join(workdir, "checkpoints"), exist_ok=True)
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(workdir, "backup")),
        keras.callbacks.ModelCheckpoint(os.path.join(workdir, "checkpoints", "last.weights.h5"),
                                        save_weights_only=True),
        keras.callbacks.TensorBoard(os.path.join(workdir, "tensorboard"), update_freq="epoch"),
        keras.callbacks.CSVLogger(os.path.join(workdir, "history.csv"), append=True),
        keras.callbacks.TerminateOnNaN(),
    ]
    start = time.time()
    # The pipeline shuffles itself (seeded); fit's own shuffle does not apply to a Dataset.
    history = model.fit(train_ds, epochs=config.epochs, steps_per_epoch=steps, callbacks=callbacks,
                        verbose=config.verbose, shuffle=False)
    train_seconds = time.time() - start
    if not np.isfinite(history.history.get("loss", [0.0])[-1]):
        raise UsageError("Training loss became NaN or infinite; try a smaller --lr. "
                         f"Received: lr={config.lr}. The last good weights are in {workdir}/checkpoints.")
    test_loss, test_accuracy = model.evaluate(test_ds, verbose=0)

    model_path = os.path.join(workdir, "model.keras")
    model.save(model_path + ".tmp.keras")
    os.replace(model_path + ".tmp.keras", model_path)
    metrics = {
        "model": model_name, "widths": widths, "dataset": info.name, "num_classes": info.num_classes,
        "w_bits": config.w_bits, "a_bits": config.a_bits, "weight_quantizer": config.weight_quantizer,
        "epochs": config.epochs, "steps_per_epoch": steps,
        "test_accuracy": float(test_accuracy), "test_loss": float(test_loss),
        "final_train_accuracy": float(history.history["accuracy"][-1]),
        "macs": model_cost.macs, "params": model_cost.params,
        "weight_memory_bytes": model_cost.memory_bytes, "train_seconds": round(train_seconds, 1),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    atomic_write_json(os.path.join(workdir, "metrics.json"), metrics)
    print("nce-tf: " + json.dumps({k: metrics[k] for k in ("test_accuracy", "macs", "params")})
          + f" -> {workdir}/metrics.json", flush=True)
    return metrics
