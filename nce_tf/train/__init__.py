"""Training's parts: the ``TrainConfig`` of ``nce-tf train``, the schedule, float initialisation and
distillation.  The training job that runs them is :func:`nce_tf.jobs.run_training`
(:mod:`nce_tf.jobs.train`), beside the search job, on the lifecycle every job shares
(:mod:`nce_tf.jobs.lifecycle`).

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


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"nce_tf.train.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'nce_tf.train' has no attribute {name!r}")


__all__ = ["Distiller", "TrainConfig", "calibrate_pact", "kd_loss", "load_float_weights", "prepare_workdir"]
