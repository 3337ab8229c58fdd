"""Training: the ``TrainConfig`` and ``run_training`` behind ``tools/train.py``; the job lifecycle
every job shares is :mod:`nce_tf.train.lifecycle`."""

from nce_tf.train.config import TrainConfig, prepare_workdir


def run_training(config, strategy=None, model_fn=None, arch=None):
    """Runs one training job; see :func:`nce_tf.train.trainer.run_training`."""
    from nce_tf.train.trainer import run_training as _run

    return _run(config, strategy=strategy, model_fn=model_fn, arch=arch)


__all__ = ["TrainConfig", "prepare_workdir", "run_training"]
