"""The shared job lifecycle (``nce_tf.jobs.lifecycle``) and the typed hand-overs between jobs:
a training of an in-memory ``Arch``, the cost a training returns, the exporter's typed config."""

import dataclasses
import json
import os

from nce_tf import arch as arch_lib
from nce_tf import cost
from nce_tf.jobs import run_training
from nce_tf.jobs.lifecycle import keep_epochs
from nce_tf.train import TrainConfig

WIDTHS = [12, 8, 16, 24, 64, 48, 40]  # resnet8, narrower layers and one at 2X


def test_an_in_memory_arch_trains_as_its_file_and_returns_its_cost(tmp_path, capsys):
    path = str(tmp_path / "arch.json")
    arch_lib.save_arch(path, "resnet8", WIDTHS)
    config = TrainConfig(workdir=str(tmp_path / "run"), model="resnet8", synthetic_train_size=64,
                         synthetic_test_size=32, epochs=1, warmup_epochs=0, batch_size=32, verbose=0)
    trained = run_training(config, arch=arch_lib.Arch("resnet8", list(WIDTHS), path=path))

    # The training's own count is the network's: what the zoo builds from the widths, counted afresh.
    counted = cost.count_arch("resnet8", WIDTHS)
    rows = lambda c: [(r.name, r.in_channels, r.out_channels, r.macs, r.params) for r in c.layers]  # noqa: E731
    assert rows(trained.cost) == rows(counted) and trained.cost.params == counted.params
    assert (trained["macs"], trained["params"], trained["widths"]) == (counted.macs, counted.params, WIDTHS)

    # config.json records what `tools/train.py --arch=FILE` records, so that command finds this run
    # (finished: it reports the metrics on disk, with the cost of the network it built).
    with open(tmp_path / "run" / "config.json", encoding="utf-8") as f:
        settings = json.load(f)
    assert (settings["model"], settings["arch"], settings["resolved_model"]) == ("", path, "resnet8")
    capsys.readouterr()
    again = run_training(dataclasses.replace(config, model="", arch=path))
    assert "this training run has finished already" in capsys.readouterr().out
    assert dict(again) == dict(trained) and rows(again.cost) == rows(counted)

    # Killed after its last checkpoint, before metrics.json: the re-run trains no epoch, says so,
    # and evaluates the restored weights to the same metrics.
    os.unlink(tmp_path / "run" / "metrics.json")
    capsys.readouterr()
    restored = run_training(config, arch=arch_lib.Arch("resnet8", list(WIDTHS), path=path))
    assert "(all 1 epochs done: evaluating and saving)" in capsys.readouterr().out
    timed = ("train_seconds", "provenance")  # this sitting's time, added to the first one's
    assert {k: v for k, v in dict(restored).items() if k not in timed} == {
        k: v for k, v in dict(trained).items() if k not in timed}
    assert len(restored["provenance"]["times"]["sittings"]) == 2


def test_keep_epochs_keeps_the_header_and_the_restored_epochs(tmp_path):
    log = tmp_path / "history.csv"
    log.write_text("epoch,loss\n0,2.3\n1,2.1\n2,1.9\n")
    keep_epochs(str(log), 2, header=1)
    assert log.read_text() == "epoch,loss\n0,2.3\n1,2.1\n"
    keep_epochs(str(log), 0, header=1)  # afresh: an empty file, which the CSV logger heads again
    assert log.read_text() == ""
    keep_epochs(str(tmp_path / "missing.jsonl"), 3)
    assert not os.path.exists(tmp_path / "missing.jsonl")


def test_a_config_is_rebuilt_from_the_settings_a_run_recorded():
    config = TrainConfig(workdir="w", model="resnet8", dataset="npz:/d.npz", seed=7, synthetic_train_size=99)
    recorded = {**config.run_settings(), "resolved_model": "resnet8", "widths": WIDTHS}
    rebuilt = TrainConfig.from_settings(json.loads(json.dumps(recorded)), workdir="w")
    assert rebuilt == config
    # A file from before a field existed: the field takes the default of TrainConfig itself.
    older = {k: v for k, v in recorded.items() if k != "subset_per_class"}
    assert TrainConfig.from_settings(older).subset_per_class == TrainConfig().subset_per_class


def test_a_compiled_model_fits_with_one_trace_of_its_step_and_the_same_numbers():
    import keras
    import numpy as np

    from nce_tf.jobs.train import build_compiled_state

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 8, 8, 3)).astype("float32"), rng.integers(0, 10, 64)

    def fitted(prebuild):
        keras.utils.set_random_seed(1)
        inputs = keras.Input((8, 8, 3))
        h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
        model = keras.Model(inputs, keras.layers.Dense(10)(h))
        model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        traces, step = [], model.train_step
        model.train_step = lambda data: traces.append(1) or step(data)
        if prebuild:
            build_compiled_state(model)
            assert all(float(v) == 0.0 for v in model.get_metrics_result().values())  # built, then reset
        history = model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0).history
        return len(traces), history, [w.numpy() for w in model.weights]

    (once, history, weights), (_, history_lazy, weights_lazy) = fitted(True), fitted(False)
    assert once == 1
    assert history == history_lazy
    assert all(np.array_equal(a, b) for a, b in zip(weights, weights_lazy))
