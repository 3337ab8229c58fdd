"""``ClippedSGD`` (``nce_tf/optimizers.py``): ``global_clipnorm`` clips the batch gradient on two
replicas as on one device, where Keras's own SGD clips each replica's share before the sum (pinned
here: the private methods it overrides are where that order lives).

A linear model ``y = x . w`` with a squared loss, two examples per replica on the conftest's two
logical CPUs; each replica's loss is its examples' sum over the global batch, so the replicas'
gradients sum to the batch gradient. Plain SGD (no momentum): one step moves ``w`` by ``-lr g``
with ``g`` the clipped gradient, worked out here in numpy.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nce_tf import distribute
from nce_tf.optimizers import ClippedSGD
from nce_tf.train.schedule import sgd
from nce_tf.train import TrainConfig

X = np.array([[1.0, 0.0, 2.0], [0.5, 1.0, 0.0], [0.0, -3.0, 1.0], [2.0, 1.0, -1.0]], np.float32)
Y = np.array([4.0, -1.0, 2.0, 0.5], np.float32)
W0 = np.array([0.3, -0.2, 0.1], np.float32)
LR, CLIP = 0.1, 0.5


def _gradient(x, y):
    """d/dw of sum((x.w - y)^2) / 4 (the global batch), at W0."""
    return (2 * (x @ W0 - y) @ x / 4).astype(np.float64)


def _parts(strategy):
    """Each replica's slice of the batch (the whole batch on one device)."""
    per = len(X) // strategy.num_replicas_in_sync
    return strategy.experimental_distribute_values_from_function(
        lambda ctx: (X[per * ctx.replica_id_in_sync_group:][:per], Y[per * ctx.replica_id_in_sync_group:][:per]))


def _step(optimizer_class, strategy, **clip):
    with strategy.scope():
        w = tf.Variable(W0)
        optimizer = optimizer_class(LR, **clip)
        optimizer.build([w])
    parts = _parts(strategy)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum((tf.linalg.matvec(x, w) - y) ** 2) / 4
        optimizer.apply([tape.gradient(loss, w)], [w])

    strategy.run(step, args=parts)
    return w.numpy().astype(np.float64)


def _clipped(g):
    return g * min(1.0, CLIP / np.linalg.norm(g))


@pytest.fixture(scope="module")
def mirrored():
    assert len(tf.config.list_logical_devices("CPU")) == 2, "tests/conftest.py configures two logical CPUs"
    return distribute.get_strategy("mirrored", 2)


def test_two_replicas_clip_the_batch_gradient_as_one_device(mirrored):
    shares = [_gradient(X[:2], Y[:2]), _gradient(X[2:], Y[2:])]
    batch = shares[0] + shares[1]
    assert np.linalg.norm(batch) > CLIP and all(np.linalg.norm(g) > CLIP for g in shares)
    one_device = _step(ClippedSGD, distribute.get_strategy("default"), global_clipnorm=CLIP)
    np.testing.assert_allclose(one_device, W0 - LR * _clipped(batch), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(_step(ClippedSGD, mirrored, global_clipnorm=CLIP), one_device, rtol=1e-6, atol=1e-7)
    # Keras's SGD: each replica's share clipped on its own, then summed (a longer step, another direction)
    keras_step = _step(keras.optimizers.SGD, mirrored, global_clipnorm=CLIP)
    np.testing.assert_allclose(keras_step, W0 - LR * (_clipped(shares[0]) + _clipped(shares[1])), rtol=1e-6, atol=1e-7)
    assert np.abs(keras_step - one_device).max() > 1e-3


def test_without_a_clip_two_replicas_sum_as_keras_does(mirrored):
    both = W0 - LR * (_gradient(X[:2], Y[:2]) + _gradient(X[2:], Y[2:]))
    np.testing.assert_allclose(_step(ClippedSGD, mirrored), both, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(_step(ClippedSGD, mirrored), _step(keras.optimizers.SGD, mirrored), rtol=0, atol=0)


def test_the_runs_sgd_is_the_clipped_one_and_serializes():
    opt = sgd(TrainConfig(workdir="x", global_clipnorm=1.0), 0.1)
    assert isinstance(opt, ClippedSGD) and opt.global_clipnorm == 1.0 and opt.nesterov
    again = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(again) is ClippedSGD and again.get_config() == opt.get_config()


def test_a_model_compiled_with_it_reloads_in_a_new_process_with_the_layers(tmp_path):
    import subprocess
    import sys

    import nce_tf.layers

    inputs = keras.Input((4,))
    model = keras.Model(inputs, nce_tf.layers.QuantDense(2, kernel_quantizer="sawb")(inputs))
    model.compile(sgd(TrainConfig(workdir="x", global_clipnorm=1.0), 0.1), "mse")
    path = str(tmp_path / "m.keras")
    model.save(path)
    script = ("import sys, keras, nce_tf.layers; m = keras.saving.load_model(sys.argv[1], safe_mode=True); "
              "print(type(m.optimizer).__name__, float(m.optimizer.global_clipnorm))")
    proc = subprocess.run([sys.executable, "-c", script, path], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ClippedSGD", "1.0"]


def test_two_replicas_under_loss_scaling_with_momentum_and_a_gradient_missing(mirrored):
    # mixed_float16's wrapper unscales before the inner step; a variable without a gradient keeps its
    # place; momentum 0.9: the first step is -lr g1, the second -lr (0.9 g1 + g2), each g the batch
    # gradient clipped (the second taken at the moved weights).
    def run(strategy):
        with strategy.scope():
            w, unused = tf.Variable(W0), tf.Variable([1.0])
            optimizer = keras.optimizers.LossScaleOptimizer(ClippedSGD(LR, momentum=0.9, global_clipnorm=CLIP))
            optimizer.build([w, unused])

        @tf.function
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum((tf.linalg.matvec(x, w) - y) ** 2) / 4
                scaled = optimizer.scale_loss(loss)
            optimizer.apply([tape.gradient(scaled, w), None], [w, unused])

        for _ in range(2):
            strategy.run(step, args=_parts(strategy))
        return w.numpy().astype(np.float64), unused.numpy()

    one, one_unused = run(distribute.get_strategy("default"))
    two, two_unused = run(mirrored)
    g1 = _clipped(_gradient(X, Y))
    w1 = W0 - LR * g1
    g2 = _clipped((2 * (X @ w1 - Y) @ X / 4))
    np.testing.assert_allclose(one, w1 - LR * (0.9 * g1 + g2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-6)
    assert one_unused == two_unused == 1.0
