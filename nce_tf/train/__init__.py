"""Training: the ``TrainConfig`` and ``run_training`` behind ``tools/train.py``; the job lifecycle
every job shares is :mod:`nce_tf.train.lifecycle`.

Starting from a trained float network and distilling from a teacher, in a run
(``TrainConfig(init_from=..., pact_init="stats", teacher=..., kd_weight=...)``) or with your own
``fit``: :func:`load_float_weights` and :func:`calibrate_pact` (:mod:`nce_tf.train.float_init`),
:class:`Distiller` and :func:`kd_loss` (:mod:`nce_tf.train.distill`).  They are imported on first
use, so ``TrainConfig`` stays free of TensorFlow.
"""

import importlib

from nce_tf.train.config import TrainConfig, prepare_workdir

_LAZY = {"Distiller": "distill", "kd_loss": "distill", "load_float_weights": "float_init",
         "calibrate_pact": "float_init"}


def run_training(config, strategy=None, model_fn=None, arch=None):
    """Runs one training job; see :func:`nce_tf.train.trainer.run_training`."""
    # TensorFlow: nce_tf.train (its TF-free config) stays importable without it
    from nce_tf.train.trainer import run_training as _run

    return _run(config, strategy=strategy, model_fn=model_fn, arch=arch)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"nce_tf.train.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'nce_tf.train' has no attribute {name!r}")


__all__ = ["Distiller", "TrainConfig", "calibrate_pact", "kd_loss", "load_float_weights", "prepare_workdir",
           "run_training"]
