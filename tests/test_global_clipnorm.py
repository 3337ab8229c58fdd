"""``--global_clipnorm``: the weight gradients clipped to one global L2 norm, in a training and a search."""

import json
import os

import keras
import numpy as np
import pytest

from nce_tf.errors import UsageError
from nce_tf.jobs import run_training
from nce_tf.train import TrainConfig
from nce_tf.train.schedule import sgd

MOMENTUM, LR = 0.9, 0.1


def _tiny(input_shape, num_classes, policy, weight_decay):
    keras.utils.set_random_seed(3)
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, name="fc")(x))


def _first_step_norm(tmp_path, clip):
    """The global norm by which one training step (batch 32, lr 0.1, Nesterov momentum 0.9) moved the weights."""
    built = []
    config = TrainConfig(workdir=str(tmp_path / f"clip{clip}"), dataset="synthetic", synthetic_train_size=64,
                         synthetic_test_size=32, epochs=1, warmup_epochs=0, steps_per_epoch=1, batch_size=32, lr=LR,
                         momentum=MOMENTUM, weight_decay=0.0, global_clipnorm=clip, verbose=0).validate()
    run_training(config, model_fn=lambda **kw: built.append(_tiny(**kw)) or built[-1])
    model = built[0]
    start = [w.copy() for w in _tiny(**{"input_shape": model.input_shape[1:], "num_classes": 10, "policy": None,
                                        "weight_decay": 0.0}).get_weights()]
    moved = [a - b for a, b in zip(model.get_weights(), start)]
    return float(np.sqrt(sum(np.sum(d.astype(np.float64) ** 2) for d in moved))), config


def test_a_training_step_moves_the_weights_by_the_clipped_norm(tmp_path):
    # Keras's Nesterov SGD, first step: m = -lr g, w += momentum m - lr g, so |dw| = (1 + momentum) lr |g|,
    # with |g| replaced by the clip when the gradient is longer.
    free, _ = _first_step_norm(tmp_path, 0.0)
    clip = 1e-3
    assert free > 10 * (1 + MOMENTUM) * LR * clip  # the clip binds
    clipped, config = _first_step_norm(tmp_path, clip)
    assert clipped == pytest.approx((1 + MOMENTUM) * LR * clip, rel=1e-3)
    with open(os.path.join(config.workdir, "config.json")) as f:
        assert json.load(f)["global_clipnorm"] == clip  # part of what the run is


def test_the_clip_is_recorded_only_when_on_and_never_negative():
    # a run without it records what runs recorded before the field existed (they still resume)
    assert "global_clipnorm" not in TrainConfig(workdir="w").run_settings()
    assert TrainConfig(workdir="w", global_clipnorm=2.0).run_settings()["global_clipnorm"] == 2.0
    assert sgd(TrainConfig(global_clipnorm=2.0), 0.1).global_clipnorm == 2.0
    assert sgd(TrainConfig(), 0.1).global_clipnorm is None
    with pytest.raises(UsageError, match=r"global_clipnorm=-1\.0.*>= 0"):
        TrainConfig(workdir="w", global_clipnorm=-1.0).validate()



def test_a_search_clips_its_weight_steps(tmp_path, monkeypatch):
    # The search's weight optimizer is the run's SGD with its clip (the clip's effect on a step is the
    # training test's above); the architecture's Adam is not clipped.
    from nce_tf.jobs import run_search
    from nce_tf.jobs import search as search_job
    from nce_tf.search import SearchConfig

    seen = []

    class Recording(search_job.SuperNet):
        def configure_optimizers(self, weight_optimizer, arch_optimizer, **kwargs):
            seen.append((weight_optimizer, arch_optimizer))
            return super().configure_optimizers(weight_optimizer, arch_optimizer, **kwargs)

    monkeypatch.setattr(search_job, "SuperNet", Recording)
    tcfg = TrainConfig(workdir=str(tmp_path / "s"), model="resnet8", w_bits=32, a_bits=32, synthetic_train_size=64,
                       synthetic_test_size=32, global_clipnorm=0.25, verbose=0)
    run_search(tcfg, SearchConfig(search_warmup_epochs=0, search_epochs=1, search_batch_size=16,
                                  search_steps_per_epoch=1), verbose=False)
    (weights, arch), = seen
    assert weights.global_clipnorm == 0.25 and arch.global_clipnorm is None
    assert weights.momentum == tcfg.momentum and weights.nesterov == tcfg.nesterov
    with open(os.path.join(tcfg.workdir, "search_config.json")) as f:
        assert json.load(f)["global_clipnorm"] == 0.25  # part of what the search is
