"""The learning-rate schedule of the paper's framework (TAS): linear warm-up, then cosine to 0; the SGD
that follows it.

Per step ``t`` with ``w`` warm-up steps and ``T`` total steps::

    lr(t) = base * t / w                                     for t < w
    lr(t) = base * (1 + cos(pi * (t - w) / (T - w))) / 2     afterwards

This is ``keras.optimizers.schedules.CosineDecay`` with ``initial_learning_rate=0``,
``warmup_target=base``, ``warmup_steps=w`` and ``decay_steps=T - w``.
"""

import keras

from nce_tf.optimizers import ClippedSGD


def warmup_cosine(base_lr, total_steps, warmup_steps):
    """A Keras schedule: ``warmup_steps`` linear from 0, then cosine to 0 at ``total_steps``."""
    decay_steps = max(1, total_steps - warmup_steps)
    if warmup_steps <= 0:
        return keras.optimizers.schedules.CosineDecay(base_lr, decay_steps, alpha=0.0)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps, alpha=0.0, warmup_target=base_lr, warmup_steps=warmup_steps
    )


def sgd(config, learning_rate):
    """The run's SGD at ``learning_rate`` (a number or a schedule), with ``config``'s (a
    :class:`~nce_tf.train.TrainConfig`) ``momentum``, ``nesterov`` and ``global_clipnorm`` (0: no clip; the
    batch gradient's norm on any number of replicas, :mod:`nce_tf.optimizers`): a training's
    optimizer, and a search's weight optimizer at its ``search_lr``."""
    return ClippedSGD(learning_rate, momentum=config.momentum, nesterov=config.nesterov,
                      global_clipnorm=config.global_clipnorm or None)
