"""nce-tf's optimizer: SGD whose ``global_clipnorm`` clips the gradient the whole batch makes, on one device or many.

Keras 3 clips inside ``optimizer.apply``, which under a ``tf.distribute`` strategy runs on each
replica *before* the replicas' gradients are summed: each replica's share (its part of the batch's
mean loss) is clipped on its own, so with ``R`` replicas the update is the sum of ``R`` separately
clipped shares, not the one-device clip of the batch gradient (up to ``R`` times the clip norm,
and a different direction). This SGD clips after the sum instead: with more than one replica,
``_clip_gradients`` leaves ``global_clipnorm`` to the all-reduce, and the summed gradient is
scaled by ``min(1, c / ||g||)``, as one device does with the whole batch. One device, or no
``global_clipnorm``, is Keras's own SGD unchanged.

Formula (``g = sum_r g_r`` the batch gradient, ``c`` the clip)::

    g <- g * min(1, c / ||g||_2)     (||.||_2 over every variable's gradient at once)

Private Keras methods (``_clip_gradients``, and the TensorFlow optimizer's
``_all_reduce_sum_gradients``, which sums the replicas' gradients) are the only place the order of
the clip and the sum can be changed; ``tests/test_clipped_sgd.py`` pins both: Keras's SGD clipping
per replica, this one matching the one-device step.

Example::

    opt = ClippedSGD(0.1, momentum=0.9, global_clipnorm=1.0)   # as keras.optimizers.SGD
"""

import keras
import tensorflow as tf


def _replicas():
    context = tf.distribute.get_replica_context()
    return context.num_replicas_in_sync if context is not None else 1


@keras.saving.register_keras_serializable(package="nce_tf")
class ClippedSGD(keras.optimizers.SGD):
    """``keras.optimizers.SGD`` whose ``global_clipnorm`` clips the replicas' summed gradient (see the
    module doc); the same arguments and behaviour otherwise. Registered serializable (package
    ``nce_tf``; importing :mod:`nce_tf.layers` registers it), so a model compiled with it reloads.

    Args:
        learning_rate, momentum, nesterov, global_clipnorm, ...: those of ``keras.optimizers.SGD``.
    """

    def _clip_gradients(self, grads):
        if self.global_clipnorm and _replicas() > 1:
            return grads  # clipped once summed: _all_reduce_sum_gradients
        return super()._clip_gradients(grads)

    def _all_reduce_sum_gradients(self, grads_and_vars):
        summed = list(super()._all_reduce_sum_gradients(grads_and_vars))
        if not (self.global_clipnorm and _replicas() > 1):
            return summed
        present = [g for g, _ in summed if g is not None]
        clipped, _ = tf.clip_by_global_norm(present, self.global_clipnorm)
        out, it = [], iter(clipped)
        for g, v in summed:
            out.append((None if g is None else next(it), v))
        return out
