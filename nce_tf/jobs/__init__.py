"""Jobs: what the tools run, above every library package they use.

- :mod:`nce_tf.jobs.lifecycle`: ``Job`` and ``run_job``, the lifecycle every job shares (strategy,
  inputs checked, seeded build, settings check, run state, finite-only checkpoints, resume), with
  :mod:`nce_tf.jobs.checkpoint` (``RunState``, the settings check, ``--overwrite``);
- :mod:`nce_tf.jobs.train`: ``run_training`` behind ``nce-tf train`` (a QAT training of a zoo
  model, a user's model or an ``Arch``, from scratch or from a float network, with distillation);
- :mod:`nce_tf.jobs.search`: ``run_search`` behind ``nce-tf search`` (data, super-net, bi-level
  fit on the library's tau and expansion callbacks, derivation, ``arch.json``);
- :mod:`nce_tf.jobs.search_log`: the search's per-epoch record and progress line.

A job may import anything in ``nce_tf``; nothing below imports a job, so the search's core
(``nce_tf.search``), the training's parts (``nce_tf.train``), the model sources and the adapter
stay free of work directories.

Example::

    from nce_tf.jobs import run_training
    from nce_tf.train import TrainConfig
    metrics = run_training(TrainConfig(model="resnet8", dataset="synthetic", epochs=1, workdir="runs/t"))
"""

import importlib

_JOBS = {"run_training": "nce_tf.jobs.train", "run_search": "nce_tf.jobs.search"}


def __getattr__(name):
    # TensorFlow loads with the job's module, on first use: `nce_tf.jobs.checkpoint` alone stays light.
    if name in _JOBS:
        return getattr(importlib.import_module(_JOBS[name]), name)
    raise AttributeError(f"module 'nce_tf.jobs' has no attribute {name!r}")


__all__ = ["run_search", "run_training"]
