"""Distribution: the strategy factory, MirroredStrategy on two logical CPUs against one device for
the search (super-net steps with an expansion, and a whole run_search) and for training.

The conftest configures two logical CPUs.  Strategies come from nce_tf.distribute's cache, so
this module uses one MirroredStrategy (two in one process collide on collective keys).
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from nce_tf import distribute
from nce_tf.errors import UsageError
from nce_tf.jobs import run_training
from nce_tf.jobs.search import run_search
from nce_tf.models import QuantPolicy
from nce_tf.search import SearchConfig
from nce_tf.search.expansion import expand
from nce_tf.search.supernet import SuperNet
from nce_tf.sources import build_space
from nce_tf.train import TrainConfig


@pytest.fixture(scope="module")
def strategies():
    assert len(tf.config.list_logical_devices("CPU")) == 2, "tests/conftest.py configures two logical CPUs"
    single, mirrored = distribute.get_strategy("default"), distribute.get_strategy("mirrored", 2)
    assert mirrored.num_replicas_in_sync == 2
    assert distribute.get_strategy("mirrored", 2) is mirrored  # cached: one per process
    return single, mirrored


@pytest.mark.parametrize("strategy, replicas, tf_config, needle", [
    ("tpu", 0, None, "strategy='tpu'"),
    ("default", 2, None, "cpu_replicas applies to --strategy=mirrored"),
    ("mirrored", -1, None, "cpu_replicas=-1"),
    ("mirrored", 65, None, "cpu_replicas=65"),
    ("multi_worker", 0, None, "TF_CONFIG unset"),
    ("multi_worker", 0, "{not json", "Invalid TF_CONFIG"),
    ("multi_worker", 0, '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 1}}',
     "Invalid TF_CONFIG"),
])
def test_strategy_flags_are_checked_without_tensorflow(strategy, replicas, tf_config, needle, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    if tf_config is not None:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(UsageError, match=None) as info:
        TrainConfig(workdir="x", strategy=strategy, cpu_replicas=replicas).validate()
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_worker_count_of_a_good_tf_config():
    cfg = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 1}}
    assert distribute.worker_count(json.dumps(cfg)) == 2


@pytest.mark.parametrize("cluster, task, expected", [
    ({"worker": ["h:1", "h:2"]}, {"type": "worker", "index": 0}, "runs/x"),
    ({"worker": ["h:1", "h:2"]}, {"type": "worker", "index": 1}, "runs/x/worker1"),
    ({"chief": ["h:0"], "worker": ["h:1"]}, {"type": "worker", "index": 0}, "runs/x/worker0"),
    ({"chief": ["h:0"], "worker": ["h:1"]}, {"type": "chief", "index": 0}, "runs/x"),
])
def test_each_worker_writes_its_own_directory(cluster, task, expected, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
    assert distribute.worker_workdir("runs/x", "multi_worker") == expected
    assert distribute.worker_workdir("runs/x", "mirrored") == "runs/x"


def test_global_batch_must_split_over_the_replicas(strategies):
    with pytest.raises(UsageError, match="search_batch_size=33"):
        distribute.check_global_batch(strategies[1], 33, "search_batch_size")
    distribute.check_global_batch(strategies[1], 32)


# ------------------------------------------------------------------ search


def _supernet_steps(strategy, bits):
    """Builds a super-net in ``strategy``'s scope, runs search steps, an expansion, more steps."""
    policy = QuantPolicy(w_bits=bits, a_bits=bits)
    with strategy.scope():
        net = SuperNet(build_space("resnet8"), policy=policy, weight_decay=5e-4, seed=0)
        net.configure_optimizers(keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
                                 keras.optimizers.Adam(0.05, beta_1=0.5), arch_weight_decay=1e-3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 32, 32, 3)).astype("float32")
    y = np.arange(48) % 10
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16, drop_remainder=True)
    ds = tf.data.Dataset.zip((ds, ds.skip(1).concatenate(ds.take(1))))
    net.set_arch_updates(True)
    net.fit(ds, epochs=1, verbose=0, shuffle=False)
    rows = expand(net, threshold=0.126, seed=0, step=3)  # eager, between steps, on mirrored variables
    net.fit(ds, epochs=1, verbose=0, shuffle=False)  # the compiled step reads the new widths in-graph
    return net, rows


# Measured here (float): largest difference of any weight or alpha 5.8e-6 after 6 steps with an
# expansion; W2A2: alpha 2.4e-4, single weights up to 6e-3 (level flips); since the expanded
# entry takes the Adam moments of the one it copies (its steps are no longer +-lr whatever the
# gradient), alpha at W2A2 differed by up to 1.0e-3.  At W2A2 a different summation order can
# move a value across a quantization level, which changes that element by a whole step and
# spreads from there: 3e-3 on alpha (a gradient term counted once per replica moves alpha by
# whole learning-rate steps, 5e-2 here).
# In float, the search tool's run below compares every variable of the whole state; here W2A2.
@pytest.mark.heavy
@pytest.mark.slow  # 128 s in the suite (.ci/run runs it with --slow)
@pytest.mark.parametrize("bits, atol", [(2, 3e-3)])
def test_supernet_on_two_replicas_matches_one_device(bits, atol, strategies):
    single, rows_1 = _supernet_steps(strategies[0], bits)
    mirrored, rows_2 = _supernet_steps(strategies[1], bits)
    assert rows_1 == rows_2 and rows_1  # the expansion fired, on the same rows
    np.testing.assert_array_equal(single.num_candidates.numpy(), mirrored.num_candidates.numpy())
    np.testing.assert_allclose(single.alpha.numpy(), mirrored.alpha.numpy(), atol=atol, rtol=0)
    # The shared Gumbel sampler advanced identically (one draw per forward, not one per replica).
    np.testing.assert_array_equal(single.seed_generator.state.numpy(), mirrored.seed_generator.state.numpy())
    # Every weight in float.  At W2A2 a flipped level moves single elements, so there the test holds
    # the architecture state (alpha, argmax, candidate counts, sampler) to the looser tolerance and
    # each variable by its own largest and mean difference, so one wrong layer cannot hide in the
    # network's average.  Measured here (max / mean): kernels, gamma, beta, PACT clips under 8.3e-4 /
    # 5.1e-5; BN running statistics up to 7.3e-3 / 2.0e-4 (flips); the classifier's kernel, which reads
    # the 2-bit activations, 4.6e-3 / 5.0e-4; the search's counters (candidates, tau, steps) equal.
    # The two states pair up variable by variable: the same names in the same order (zip alone would
    # compare whatever two variables share a position).
    assert [v.path for v in single.weights] == [v.path for v in mirrored.weights]
    if bits == 32:
        for a, b in zip(single.weights, mirrored.weights):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=atol, rtol=1e-4, err_msg=a.path)
    else:
        counters = ("num_candidates", "tau", "width_sum", "width_steps", "alpha_grad_steps", "alpha_live_steps",
                    "cost_active_steps")
        for a, b in zip(single.weights, mirrored.weights):
            diff = np.abs(a.numpy() - b.numpy())
            if a.path.rsplit("/", 1)[-1] in counters:
                assert diff.max() == 0, a.path
            else:
                assert diff.max() < 2e-2 and diff.mean() < 1e-3, (a.path, diff.max(), diff.mean())
    np.testing.assert_array_equal(single.argmax_widths().numpy(), mirrored.argmax_widths().numpy())
    # The per-epoch metrics are global-batch means, not 1/R of them.
    logs_1 = single.evaluate(*_eval_data(), verbose=0, return_dict=True)
    logs_2 = mirrored.evaluate(*_eval_data(), verbose=0, return_dict=True)
    assert abs(logs_1["loss"] - logs_2["loss"]) < 1e-3 * max(1.0, logs_1["loss"])


def _eval_data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(32, 32, 32, 3)).astype("float32"), np.arange(32) % 10


def _search_configs(workdir, strategy):
    tcfg = TrainConfig(workdir=str(workdir), model="resnet8", w_bits=32, a_bits=32, synthetic_train_size=256,
                       synthetic_test_size=64, seed=0, verbose=0, strategy=strategy,
                       cpu_replicas=2 if strategy == "mirrored" else 0)
    scfg = SearchConfig(search_warmup_epochs=0, search_epochs=2, search_batch_size=32, search_steps_per_epoch=3,
                        threshold=0.13, arch_lr=0.05)
    return tcfg, scfg


@pytest.mark.heavy
@pytest.mark.slow  # 82 s in the suite (.ci/run runs it with --slow)
def test_run_search_mirrored_writes_the_single_device_arch(tmp_path, strategies):
    records = {}
    for name in ("default", "mirrored"):
        records[name] = run_search(*_search_configs(tmp_path / name, name), verbose=False)
    one, two = records["default"], records["mirrored"]
    assert one["widths"] == two["widths"] and one["argmax_widths"] == two["argmax_widths"]
    assert one["num_candidates"] == two["num_candidates"] and max(one["num_candidates"]) > 8
    # Probabilities within 5e-5: measured 1.9e-5 (8.6e-6 with the new entry's Adam moments zeroed
    # instead of copied, whose first steps are +-lr whatever round-off the gradient carries).
    for p, q in zip(one["final_probs"], two["final_probs"]):
        np.testing.assert_allclose(p, q, atol=5e-5)
    logs = [[json.loads(line) for line in open(tmp_path / name / "search_log.jsonl")] for name in records]
    for r1, r2 in zip(*logs):
        assert abs(r1["loss"] - r2["loss"]) < 1e-4 and abs(r1["cost_loss"] - r2["cost_loss"]) < 1e-4
        assert r1["expanded_rows"] == r2["expanded_rows"]
    # The whole search state each wrote (every weight, BN statistic, alpha, both optimizers' slots,
    # the Gumbel sampler's state: one draw per forward, not one per replica) agrees in float.
    # Measured here after the 6 steps: weights and their slots within 2.3e-5 (the first conv,
    # values up to 0.44), alpha within 7e-5 and its Adam moments within 3.6e-5 (Adam scales a
    # round-off-sized gradient difference up to a step of the 0.05 learning rate).
    readers = [tf.train.load_checkpoint(str(tmp_path / name / "search" / "checkpoints")) for name in records]
    keys = sorted(k for k in readers[0].get_variable_to_shape_map() if k != "_CHECKPOINTABLE_OBJECT_GRAPH")
    assert sorted(readers[1].get_variable_to_shape_map()) == sorted(readers[0].get_variable_to_shape_map())
    assert any(k.startswith("sampler_state") for k in keys) and any(k.startswith("net/alpha/") for k in keys)
    for key in keys:
        a, b = (r.get_tensor(key) for r in readers)
        if a.dtype.kind in "iub":
            np.testing.assert_array_equal(a, b, err_msg=key)
        else:
            np.testing.assert_allclose(a, b, atol=2e-4 if "arch_optimizer" in key or "alpha" in key else 5e-5,
                                       rtol=1e-4, err_msg=key)


# ------------------------------------------------------------------ training


@pytest.mark.heavy
def test_run_training_mirrored_matches_single_device(tmp_path, strategies):
    weights = {}
    for name in ("default", "mirrored"):
        cfg = TrainConfig(workdir=str(tmp_path / name), model="resnet8", synthetic_train_size=128,
                          synthetic_test_size=64, epochs=2, warmup_epochs=1, batch_size=32, lr=0.05,
                          steps_per_epoch=2, verbose=0, strategy=name, cpu_replicas=2 if name == "mirrored" else 0)
        metrics = run_training(cfg)
        assert metrics["replicas"] == (2 if name == "mirrored" else 1)
        model = keras.saving.load_model(str(tmp_path / name / "model.keras"), safe_mode=True)
        weights[name] = [w.numpy() for w in model.weights]
    # Measured here: largest absolute difference 1.3e-5, once 2.2e-5 (on weights of ~0.01) after 8
    # steps (synchronized BN, global-batch loss: float32 round-off that SGD carries forward); after
    # the 4 steps tested, within atol 1e-5 with rtol 1e-4.
    for a, b in zip(weights["default"], weights["mirrored"]):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4)
