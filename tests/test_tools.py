"""Tests of the command-line tools ``tools/train.py`` and ``tools/count.py``.

The tools run as subprocesses from the repository root, with an environment that does
not set ``TF_CPP_MIN_LOG_LEVEL`` (the tools must keep TensorFlow's start-up chatter off
stderr themselves; the conftest sets the variable for this process, so it is removed).

Conventions checked for every bad input: exit status 2, exactly one stderr line starting
with ``error: ``, no traceback, and nothing in the case's directory created, modified or
deleted (the work directory holds sentinel files ``keep.txt`` and ``metrics.json``).

Most bad inputs are rejected before the tool imports TensorFlow; those that need it
(file contents, TFDS) cost a few seconds, so the bad-input table runs its subprocesses two
at a time in a thread pool, started once per module; each case then checks its own result.
Cases marked ``IN_PROCESS`` (rejected by the library after TensorFlow loads) parse the same
flags and call the same job function in the test process: a ``UsageError`` naming the value,
nothing written.
"""

import concurrent.futures
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join("tools", "train.py")
COUNT = os.path.join("tools", "count.py")
SEARCH = os.path.join("tools", "search.py")
NCE = os.path.join("tools", "nce.py")
BENCH = os.path.join("tools", "bench.py")
ANALYZE = os.path.join("tools", "analyze.py")
SUMMARY = os.path.join("tools", "search_summary.py")
BAD_INPUT_TIMEOUT = 180  # per subprocess, queueing in the pool included
RUN_TIMEOUT = 300
WORKERS = 2  # the machine has 2 cores

KEEP_TEXT = b"sentinel: must survive every failed run\n"
METRICS_TEXT = b'{"sentinel": true, "test_accuracy": 0.5}\n'


def _env(extra=None):
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.pop("TF_CONFIG", None)
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    env.update(extra or {})
    return env


def _run(args, timeout=RUN_TIMEOUT, env=None):
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=_env(env), capture_output=True, text=True,
        timeout=timeout,
    )


def _snapshot(root):
    """Every file and directory below ``root``: path -> (kind, bytes, inode, mtime_ns)."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            snap[os.path.relpath(p, root)] = ("dir", None, None, None)
        for f in filenames:
            p = os.path.join(dirpath, f)
            st = os.stat(p)
            with open(p, "rb") as fh:
                snap[os.path.relpath(p, root)] = ("file", fh.read(), st.st_ino, st.st_mtime_ns)
    return snap


def _json_stdout(proc):
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout
    return json.loads(lines[0])


# ---------------------------------------------------------------------------- count


def _hand_count_cifar_resnet(n, num_classes=10, widths=(16, 32, 64), in_channels=3, size=32):
    """MACs and params of the TAS CIFAR ResNet (depth 6n + 2), in plain Python.

    Convs are (kernel, c_in, c_out, output side); every conv is followed by one BN.
    """
    convs = [(3, in_channels, widths[0], size)]
    cin, side = widths[0], size
    for stage, c in enumerate(widths):
        for block in range(n):
            stride = 2 if stage > 0 and block == 0 else 1
            side_out = side // stride
            convs.append((3, cin, c, side_out))  # conv_a
            convs.append((3, c, c, side_out))  # conv_b
            if stride != 1 or cin != c:
                convs.append((1, cin, c, side_out))  # avg pool 2x2 + 1x1 conv (+ BN)
            cin, side = c, side_out
    macs = sum(k * k * ci * co * s * s for k, ci, co, s in convs) + cin * num_classes
    params = (
        sum(k * k * ci * co for k, ci, co, _ in convs)  # conv kernels, no bias
        + cin * num_classes + num_classes  # dense kernel + bias
        + sum(2 * co for _, _, co, _ in convs)  # BN gamma + beta after every conv
    )
    return macs, params, len(convs)


@pytest.mark.heavy
@pytest.mark.slow  # 35 s in the suite (.ci/run runs it with --slow)
def test_an_imagenet_model_on_32x32_images_is_counted_at_32x32_everywhere(tmp_path):
    # ResNet-18 (224 x 224 by default) on the synthetic 32 x 32 task: every spatial size is the
    # 224 network's divided by 7 (112/56/56/28/14/7 -> 16/8/8/4/2/1), so each conv's MACs are
    # 1/49 of its 224 x 224 count, and the 10-class classifier's 512 * 10 MACs stay.
    from nce_tf.cost import count_arch

    workdir = tmp_path / "r18"
    proc = _run([NCE, "--model=resnet18", "--dataset=synthetic", "--synthetic_train_size=64",
                 "--synthetic_test_size=32", "--mode=wrpn", "--w_bits=2", "--a_bits=2", "--epochs=1",
                 "--warmup_epochs=0", "--batch_size=32", "--verbose=0", f"--workdir={workdir}"])
    assert proc.returncode == 0, proc.stderr
    arch = json.loads((workdir / "arch.json").read_text())
    metrics = json.loads((workdir / "metrics.json").read_text())
    counted = _run([COUNT, f"--arch={workdir / 'arch.json'}", "--w_bits=2", "--a_bits=2", "--json"])
    assert counted.returncode == 0, counted.stderr
    at_224 = count_arch("resnet18", arch["widths"], num_classes=10).macs
    assert (at_224 - 5120) % 49 == 0
    macs = (at_224 - 5120) // 49 + 5120
    assert arch["macs"] == metrics["macs"] == _json_stdout(counted)["macs"] == macs
    assert arch["input_shape"] == [32, 32, 3] and arch["num_classes"] == 10
    assert f"| MACs | {arch['original_macs']:,} | {macs:,} (" in (workdir / "report.md").read_text()


def test_count_json_matches_hand_count():
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        f_float = pool.submit(_run, [COUNT, "--model=resnet20", "--json"])
        f_quant = pool.submit(_run, [COUNT, "--model=resnet20", "--w_bits=2", "--a_bits=2", "--json"])
        p_float, p_quant = f_float.result(), f_quant.result()
    for proc in (p_float, p_quant):
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
    full, quant = _json_stdout(p_float), _json_stdout(p_quant)

    macs, params, num_convs = _hand_count_cifar_resnet(3)
    assert num_convs == 21  # 19 searchable convs + 2 shortcut convs
    assert (macs, params) == (40_813_184, 272_474)  # the hand count itself, spelled out
    assert isinstance(full["macs"], int) and isinstance(full["params"], int)
    assert full["macs"] == macs
    assert full["params"] == params
    assert full["bn_layers"] == num_convs
    assert round(full["macs"] / 1e6, 2) == 40.81  # the paper's ResNet-20 FLOPs
    assert round(full["params"] / 1e6, 2) == 0.27  # the paper's ResNet-20 params
    assert full["widths"] == [16] * 7 + [32] * 6 + [64] * 6
    assert full["memory_bytes"] == full["float_memory_bytes"] == 4 * params

    assert quant["macs"] == full["macs"]
    assert quant["params"] == full["params"]
    assert quant["w_bits"] == 2 and quant["a_bits"] == 2
    assert quant["memory_bytes"] < quant["float_memory_bytes"]
    assert quant["float_memory_bytes"] == full["float_memory_bytes"]


# ----------------------------------------------------------------------- bad inputs


def _npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _cifar_arrays(channels=3):
    return dict(
        x_train=np.zeros((20, 32, 32, channels), np.uint8), y_train=np.arange(20) % 10,
        x_test=np.zeros((10, 32, 32, channels), np.uint8), y_test=np.arange(10),
    )


def _write(path, content):
    mode = "wb" if isinstance(content, bytes) else "w"
    with open(path, mode) as f:
        f.write(content)


def _arch_json(path, model, widths):
    # Written by hand, not with nce_tf.arch.save_arch: save_arch refuses bad widths.
    _write(path, json.dumps({"format": "nce_tf.arch/1", "model": model, "widths": widths}))


def _setup_missing(d):
    pass


def _setup_random_npz(d):
    _write(os.path.join(d, "data.npz"), np.random.default_rng(0).bytes(4096))


def _setup_npz_without_y_test(d):
    arrays = _cifar_arrays()
    del arrays["y_test"]
    _npz(os.path.join(d, "data.npz"), **arrays)


def _setup_npz_two_channels(d):
    _npz(os.path.join(d, "data.npz"), **_cifar_arrays(channels=2))


def _setup_afile(d):
    _write(os.path.join(d, "afile"), "a regular file, not a directory\n")


def _setup_invalid_json(d):
    _write(os.path.join(d, "arch.json"), '{"model": "resnet8", "widths": [16, 16,')


def _setup_arch_resnet20(d):
    _arch_json(os.path.join(d, "arch.json"), "resnet20", [16] * 7 + [32] * 6 + [64] * 6)


def _setup_arch_wrong_count(d):
    _arch_json(os.path.join(d, "arch.json"), "resnet8", [16, 16, 16, 32, 32, 64])


def _setup_arch_too_wide(d):
    _arch_json(os.path.join(d, "arch.json"), "resnet8", [16, 16, 33, 32, 32, 64, 64])


def _run_dir(d, *names):
    path = os.path.join(d, "run", *names)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def _setup_other_train_config(d):
    _write(_run_dir(d, "config.json"), json.dumps({"model": "resnet8", "epochs": 99}))


def _setup_other_search_config(d):
    _write(_run_dir(d, "search_config.json"), json.dumps({"model": "resnet8", "mode": "tas"}))


def _setup_config_not_json(d):
    _write(_run_dir(d, "config.json"), "{half a config")


def _train_settings(**flags):
    """What tools/train.py saves in config.json for these flags (a re-run with them resumes)."""
    from nce_tf import models
    from nce_tf.train import TrainConfig

    cfg = TrainConfig(workdir="unused", **flags)
    return {**cfg.run_settings(), "resolved_model": cfg.model, "widths": models.default_widths(cfg.model)}


def _garbage_checkpoint(directory, drop_data=False):
    os.makedirs(directory, exist_ok=True)
    _write(os.path.join(directory, "checkpoint"),
           'model_checkpoint_path: "ckpt-1"\nall_model_checkpoint_paths: "ckpt-1"\n')
    _write(os.path.join(directory, "ckpt-1.index"), np.random.default_rng(1).bytes(300))
    if not drop_data:
        _write(os.path.join(directory, "ckpt-1.data-00000-of-00001"), np.random.default_rng(2).bytes(3000))


def _setup_train_corrupt_checkpoint(d):
    # Its own work directory: the sentinel metrics.json in run/ would mark the run finished.
    _write(_run_dir(d, "..", "ckrun", "config.json"), json.dumps(_train_settings(model="resnet8")))
    _garbage_checkpoint(os.path.join(d, "ckrun", "backup"))


def _setup_search_corrupt_checkpoint(d):
    from nce_tf.search import SearchConfig
    from nce_tf.jobs.search import search_settings
    from nce_tf.train import TrainConfig

    settings = search_settings(TrainConfig(workdir="unused", model="resnet8"), SearchConfig())
    _write(_run_dir(d, "search_config.json"), json.dumps(settings))
    _garbage_checkpoint(os.path.join(d, "run", "search", "checkpoints"), drop_data=True)


def _setup_bad_arch_for_count(d):
    _write(os.path.join(d, "arch.json"), "not json at all")


def _save_user_model(path, input_shape=(32, 32, 3), middle=None):
    """A small functional CNN saved as ``.keras``; ``middle`` builds one extra layer after the first conv."""
    import keras

    i = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(i)
    if middle is not None:
        x = middle()(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    keras.Model(i, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x))).save(path)


def _setup_user_model_h5(d):
    _write(os.path.join(d, "model.h5"), b"not a keras archive")


def _setup_user_model_not_zip(d):
    _write(os.path.join(d, "bad.keras"), np.random.default_rng(3).bytes(500))


def _setup_user_model_lambda(d):
    import keras

    # A Lambda layer holds Python bytecode: safe mode refuses to load it, so no code runs.
    _save_user_model(os.path.join(d, "lambda.keras"), middle=lambda: keras.layers.Lambda(lambda t: t * 2.0))


def _setup_user_model_unregistered(d):
    import keras

    class Doubler(keras.layers.Layer):  # not registered in the tool's process
        def call(self, x):
            return x * 2.0

    _save_user_model(os.path.join(d, "custom.keras"), middle=Doubler)


def _setup_user_model_16px(d):
    _save_user_model(os.path.join(d, "small.keras"), input_shape=(16, 16, 3))


def _setup_user_model_reshape(d):
    import keras

    _save_user_model(os.path.join(d, "reshape.keras"), middle=lambda: keras.layers.Reshape((32, 32, 8), name="flip"))


def _save_zoo_model(path, name, **kwargs):
    from nce_tf import models

    models.build_model(name, **kwargs).save(path)


def _setup_float_resnet20(d):
    _save_zoo_model(os.path.join(d, "r20.keras"), "resnet20")


def _setup_teacher_5_classes(d):
    _save_zoo_model(os.path.join(d, "five.keras"), "resnet8", num_classes=5)


# Options of a case: extra environment variables, and whether the tool may create NEW files
# (a run that starts and then diverges); existing files must survive in every case.
MIRRORED = ["--strategy=mirrored", "--cpu_replicas=2"]
# Cases that fail inside the library after TensorFlow has loaded run in this process, through the
# same flag parsing as the tools (a subprocess would spend ~4 s of CPU importing TensorFlow each);
# the subprocess cases keep one of each kind, so the tools' exit status and one-line message
# stay covered end to end.
IN_PROCESS = {"in_process": True}
BAD_TF_CONFIG = {"TF_CONFIG": '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "ps", "index": 0}}'}
SMALL_RUN = ["--model=resnet8", "--synthetic_train_size=64", "--synthetic_test_size=32", "--batch_size=32"]
NAN_RUN = ["--model=resnet8", "--synthetic_train_size=64", "--synthetic_test_size=32", "--epochs=1",
           "--warmup_epochs=0", "--steps_per_epoch=16", "--batch_size=32", "--lr=10", "--weight_decay=0.9",
           "--verbose=0"]

# (id, tool, arguments with {d} = the case directory, setup, text the message must contain[, options]).
# Train cases always get --workdir={d}/run unless they pass their own --workdir.
BAD_CASES = [
    ("train-unknown-model", TRAIN, ["--model=resnet9"], None, "resnet9"),
    ("train-unknown-dataset", TRAIN, ["--dataset=mnist"], None, "mnist"),
    ("train-empty-npz-path", TRAIN, ["--dataset=npz:"], None, "dataset"),
    ("train-w_bits-9", TRAIN, ["--w_bits=9"], None, "w_bits=9"),
    ("train-w_bits-1", TRAIN, ["--w_bits=1"], None, "w_bits=1"),
    ("train-a_bits-33", TRAIN, ["--a_bits=33"], None, "a_bits=33"),
    ("train-w_bits-not-int", TRAIN, ["--w_bits=abc"], None, "w_bits"),
    ("train-npz-missing", TRAIN, ["--dataset=npz:{d}/missing.npz"], _setup_missing, "missing.npz"),
    ("train-npz-random-bytes", TRAIN, ["--dataset=npz:{d}/data.npz"], _setup_random_npz, "data.npz", IN_PROCESS),
    ("train-npz-no-y_test", TRAIN, ["--dataset=npz:{d}/data.npz"], _setup_npz_without_y_test, "y_test", IN_PROCESS),
    ("train-npz-2-channels", TRAIN, ["--dataset=npz:{d}/data.npz"], _setup_npz_two_channels, "x_train", IN_PROCESS),
    ("train-workdir-not-writable", TRAIN, ["--workdir={d}/afile/sub"], _setup_afile, "afile/sub"),
    ("train-flagfile-missing", TRAIN, ["--flagfile={d}/missing.flags"], None, "missing.flags"),
    ("train-epochs-0", TRAIN, ["--epochs=0"], None, "epochs=0"),
    ("train-warmup-not-below-epochs", TRAIN, ["--warmup_epochs=5", "--epochs=5"], None, "warmup_epochs"),
    ("train-batch_size-0", TRAIN, ["--batch_size=0"], None, "batch_size=0"),
    ("train-lr-negative", TRAIN, ["--lr=-1"], None, "lr=-1"),
    ("train-momentum-1.5", TRAIN, ["--momentum=1.5"], None, "momentum=1.5"),
    ("train-global-clipnorm-negative", TRAIN, ["--global_clipnorm=-1"], None, "global_clipnorm=-1", IN_PROCESS),
    ("train-weight_quantizer-foo", TRAIN, ["--weight_quantizer=foo"], None, "foo"),
    ("train-positional", TRAIN, ["extra_arg"], None, "extra_arg"),
    ("train-arch-invalid-json", TRAIN, ["--arch={d}/arch.json"], _setup_invalid_json, "JSON"),
    ("train-arch-other-model", TRAIN, ["--model=resnet8", "--arch={d}/arch.json"], _setup_arch_resnet20,
     "resnet20", IN_PROCESS),
    ("train-arch-wrong-width-count", TRAIN, ["--arch={d}/arch.json"], _setup_arch_wrong_count, "6 widths", IN_PROCESS),
    ("train-arch-width-above-2x", TRAIN, ["--arch={d}/arch.json"], _setup_arch_too_wide, "33", IN_PROCESS),
    ("train-unknown-flag", TRAIN, ["--nosuchflag=1"], None, "nosuchflag"),
    ("count-nothing-to-count", COUNT, [], None, "--model"),
    ("analyze-jobs-0", ANALYZE, ["tradeoff", "--workdir={d}/run", "--jobs=0"], None, "jobs=0"),
    ("analyze-unknown-schedule", ANALYZE, ["kendall", "--workdir={d}/run", "--schedule=fast"], None, "schedule"),
    ("analyze-not-a-search-workdir", ANALYZE, ["tradeoff", "--workdir={d}/run"], None, "no arch.json"),
    ("summary-not-a-search-workdir", SUMMARY, ["{d}/run"], None, "Not a finished search"),
    ("summary-no-workdir", SUMMARY, [], None, "search work directories"),
    ("summary-probe-missing", SUMMARY, ["{d}/run", "--probe={d}/missing.json"], None, "probe="),
    ("search-bad-width-ratios", SEARCH, ["--width_ratios=0.5,0.3,1"], None, "width_ratios"),
    ("search-arch-steps-zero", SEARCH, ["--arch_steps=0"], None, "arch_steps"),
    ("search-supernet-epochs-negative", SEARCH, ["--supernet_epochs=-1"], None, "supernet_epochs=-1", IN_PROCESS),
    ("search-negative-tolerance-above", SEARCH, ["--tolerance_above=-0.1"], None, "tolerance_above"),
    ("count-unknown-model", COUNT, ["--model=resnet9"], None, "resnet9"),
    ("train-tfds-not-prepared", TRAIN, ["--dataset=cifar10", "--tfds_data_dir={d}/tfds", "--nodownload"], None,
     "--nodownload"),
    ("train-tfds-unknown-name", TRAIN, ["--dataset=tfds:no_such_images", "--tfds_data_dir={d}/tfds"], None,
     "tfds:no_such_images", IN_PROCESS),
    ("train-tfds-grayscale", TRAIN, ["--dataset=tfds:mnist", "--tfds_data_dir={d}/tfds"], None, "(28, 28, 1)",
     IN_PROCESS),
    ("search-tfds-not-images", SEARCH, ["--search_dataset=tfds:glue/cola", "--tfds_data_dir={d}/tfds"], None,
     "tfds:glue/cola", IN_PROCESS),
    ("train-imagenet-manual-download", TRAIN, ["--dataset=imagenet2012", "--tfds_data_dir={d}/tfds"], None,
     "downloads/manual", IN_PROCESS),
    ("train-tfds-no-name", TRAIN, ["--dataset=tfds:"], None, "tfds:"),
    ("search-threshold-below-an-eighth", SEARCH, ["--threshold=0.1"], None, "threshold=0.1"),
    ("search-threshold-1", SEARCH, ["--threshold=1.0"], None, "threshold=1.0"),
    ("nce-unknown-mode", NCE, ["--mode=darts"], None, "mode='darts'"),
    ("search-unknown-tas-space", SEARCH, ["--mode=tas", "--tas_space=3x8"], None, "3x8"),
    # The band reaches tolerance_above x the original above the target: with 0 it ends at 0.001 x,
    # under the narrowest network (1/64 of the MACs).
    ("search-budget-below-the-space", SEARCH, ["--flops_ratio=0.001", "--tolerance_above=0"], None,
     "flops_ratio=0.001", IN_PROCESS),
    ("search-params-below-the-space", SEARCH, ["--params_ratio=0.001"], None, "params_ratio=0.001", IN_PROCESS),
    ("search-budget-above-1x-tas", SEARCH, ["--mode=tas", "--flops_ratio=1.5"], None, "flops_ratio=1.5", IN_PROCESS),
    ("search-params-budget-impossible", SEARCH, ["--params_ratio=0.0001"], None, "params_ratio=0.0001", IN_PROCESS),
    ("search-tau-min-above-max", SEARCH, ["--tau_min=6"], None, "tau_min=6"),
    ("search-lambda-negative", SEARCH, ["--lambda_flops=-1"], None, "lambda_flops=-1"),
    ("search-unknown-search-dataset", SEARCH, ["--search_dataset=mnist"], None, "mnist"),
    ("search-batch-larger-than-half", SEARCH, ["--synthetic_train_size=64", "--search_batch_size=64"], None,
     "search_batch_size=64", IN_PROCESS),
    ("nce-arch-given", NCE, ["--arch={d}/arch.json"], _setup_arch_resnet20, "arch=", IN_PROCESS),
    ("nce-unknown-model", NCE, ["--model=resnet9"], None, "resnet9"),
    ("nce-mixed-precision-float16", NCE, ["--mixed_precision=float16"], None, "mixed_precision='float16'"),
    ("bench-unknown-subcommand", BENCH, ["qat2"], None, "qat2"),
    ("train-npz-missing-new-workdir", TRAIN, ["--workdir={d}/newrun", "--dataset=npz:{d}/missing.npz"],
     _setup_missing, "missing.npz", IN_PROCESS),
    # Issue 5: distribution, resume, guards, and every flag's type and range.
    ("train-strategy-unknown", TRAIN, ["--strategy=tpu"], None, "strategy='tpu'"),
    ("train-cpu_replicas-negative", TRAIN, [*MIRRORED[:1], "--cpu_replicas=-2"], None, "cpu_replicas=-2"),
    ("train-cpu_replicas-too-many", TRAIN, [*MIRRORED[:1], "--cpu_replicas=100"], None, "cpu_replicas=100"),
    ("train-cpu_replicas-not-mirrored", TRAIN, ["--cpu_replicas=2"], None, "strategy='default'"),
    ("train-cpu_replicas-not-int", TRAIN, ["--cpu_replicas=two"], None, "cpu_replicas"),
    ("search-multi_worker-no-TF_CONFIG", SEARCH, ["--strategy=multi_worker"], None, "TF_CONFIG unset"),
    ("nce-multi_worker-bad-TF_CONFIG", NCE, ["--strategy=multi_worker"], None, "Invalid TF_CONFIG",
     {"env": BAD_TF_CONFIG}),
    ("train-batch-not-split-over-replicas", TRAIN, [*MIRRORED, "--batch_size=33"], None, "batch_size=33"),
    ("search-batch-not-split-over-replicas", SEARCH, [*MIRRORED, "--search_batch_size=31"], None,
     "search_batch_size=31"),
    ("train-workdir-holds-other-run", TRAIN, ["--model=resnet8"], _setup_other_train_config, "epochs=99"),
    ("search-workdir-holds-other-search", SEARCH, ["--model=resnet8"], _setup_other_search_config, "mode='tas'",
     IN_PROCESS),
    ("nce-workdir-holds-other-search", NCE, ["--model=resnet8"], _setup_other_search_config, "--overwrite", IN_PROCESS),
    ("train-config-json-corrupt", TRAIN, ["--model=resnet8"], _setup_config_not_json, "not valid JSON", IN_PROCESS),
    ("train-checkpoint-corrupt", TRAIN, ["--model=resnet8", "--workdir={d}/ckrun"], _setup_train_corrupt_checkpoint,
     "checkpoint does not load"),
    ("search-checkpoint-data-missing", SEARCH, ["--model=resnet8"], _setup_search_corrupt_checkpoint,
     "checkpoint does not load", IN_PROCESS),
    ("train-nan-from-huge-lr", TRAIN, NAN_RUN, None, "NaN or infinite", {"may_create": True}),
    ("count-arch-not-json", COUNT, ["--arch={d}/arch.json"], _setup_bad_arch_for_count, "arch.json"),
    ("search-npz-random-bytes", SEARCH, ["--dataset=npz:{d}/data.npz"], _setup_random_npz, "data.npz", IN_PROCESS),
    ("train-epochs-not-int", TRAIN, ["--epochs=abc"], None, "epochs"),
    ("train-lr-not-float", TRAIN, ["--lr=fast"], None, "lr"),
    ("train-seed-float", TRAIN, ["--seed=1.5"], None, "seed"),
    ("train-overwrite-not-bool", TRAIN, ["--overwrite=maybe"], None, "overwrite"),
    ("train-lr-above-10", TRAIN, ["--lr=11"], None, "lr=11"),
    ("train-weight_decay-1", TRAIN, ["--weight_decay=1"], None, "weight_decay=1"),
    ("train-pact_alpha_init-0", TRAIN, ["--pact_alpha_init=0"], None, "pact_alpha_init=0"),
    ("train-verbose-3", TRAIN, ["--verbose=3"], None, "verbose=3"),
    ("train-steps_per_epoch-negative", TRAIN, ["--steps_per_epoch=-1"], None, "steps_per_epoch=-1"),
    ("train-synthetic-too-small", TRAIN, ["--synthetic_train_size=5"], None, "synthetic_train_size=5"),
    ("search-tolerance-1", SEARCH, ["--tolerance=1"], None, "tolerance=1"),
    ("search-lane-0", SEARCH, ["--lane=0"], None, "lane=0"),
    # 8-channel lanes start a 16-channel row with 2 candidates: its widest at 0.5, above T = 0.3
    ("search-threshold-at-a-rows-uniform-probability", SEARCH, ["--lane=8"], None, "threshold=0.3", IN_PROCESS),
    ("search-search_lr-0", SEARCH, ["--search_lr=0"], None, "search_lr=0"),
    ("search-arch_lr-2", SEARCH, ["--arch_lr=2"], None, "arch_lr=2"),
    ("search-arch_beta1-1", SEARCH, ["--arch_beta1=1"], None, "arch_beta1=1"),
    ("search-expand_every_steps-negative", SEARCH, ["--expand_every_steps=-1"], None, "expand_every_steps=-1"),
    ("search-warmup-negative", SEARCH, ["--search_warmup_epochs=-1"], None, "search_warmup_epochs=-1"),
    ("nce-search_epochs-0", NCE, ["--search_epochs=0"], None, "search_epochs=0"),
    # Users' own models (--model=keras:PATH.keras).
    ("train-user-model-missing", TRAIN, ["--model=keras:{d}/missing.keras"], None, "missing.keras"),
    ("train-user-model-not-dot-keras", TRAIN, ["--model=keras:{d}/model.h5"], _setup_user_model_h5, "model.h5"),
    ("count-user-model-not-zip", COUNT, ["--model=keras:{d}/bad.keras"], _setup_user_model_not_zip,
     "not a .keras archive"),
    ("train-user-model-lambda-refused", TRAIN, ["--model=keras:{d}/lambda.keras"], _setup_user_model_lambda,
     "Cannot load the model file"),
    ("search-user-model-unregistered-layer", SEARCH, ["--model=keras:{d}/custom.keras"],
     _setup_user_model_unregistered, "Cannot load the model file", IN_PROCESS),
    ("search-user-model-other-image-size", SEARCH, ["--model=keras:{d}/small.keras"], _setup_user_model_16px,
     "(16, 16, 3)", IN_PROCESS),
    ("nce-user-model-reshape", NCE, ["--model=keras:{d}/reshape.keras"], _setup_user_model_reshape, "'flip'",
     IN_PROCESS),
    # Float initialisation and distillation (issue 15).
    ("train-kd_weight-1.5", TRAIN, ["--teacher={d}/t.keras", "--kd_weight=1.5"], None, "kd_weight=1.5"),
    ("train-kd_temperature-0", TRAIN, ["--teacher={d}/t.keras", "--kd_weight=0.5", "--kd_temperature=0"], None,
     "kd_temperature=0", IN_PROCESS),
    ("train-init-from-another-model", TRAIN, [*SMALL_RUN, "--init_from={d}/r20.keras"], _setup_float_resnet20,
     "another model: its QuantConv2D 's1_b1_a_conv' (3x3) is not in the network", IN_PROCESS),
    ("search-init-from-another-model", SEARCH, [*SMALL_RUN, "--search_batch_size=16", "--init_from={d}/r20.keras"],
     _setup_float_resnet20, "The checkpoint is of another model: its QuantConv2D 's1_b1_a_conv' is not in the searched model", IN_PROCESS),
    ("train-teacher-other-classes", TRAIN, [*SMALL_RUN, "--teacher={d}/five.keras", "--kd_weight=0.5"],
     _setup_teacher_5_classes, "5 outputs, the dataset 10 classes", IN_PROCESS),
    ("train-teacher-not-a-run", TRAIN, [*SMALL_RUN, "--teacher={d}", "--kd_weight=0.5"], None,
     "holds no finished run", IN_PROCESS),
]


def _params(cases, in_process=False):
    return [pytest.param(c, id=c[0]) for c in cases if bool(_options(c).get("in_process")) == in_process]


def _options(case):
    return case[5] if len(case) > 5 else {}


def _bad_case_command(case, d):
    _, tool, args, _, _ = case[:5]
    args = [a.replace("{d}", d) for a in args]
    if tool in (TRAIN, SEARCH, NCE) and not any(a.startswith("--workdir=") for a in args):
        args = [f"--workdir={d}/run", *args]
    return [tool, *args]


def _prepare_bad_case(case, tmp_path_factory):
    case_id, _, _, setup, _ = case[:5]
    d = str(tmp_path_factory.mktemp(case_id))
    run = os.path.join(d, "run")
    os.makedirs(run)
    _write(os.path.join(run, "keep.txt"), KEEP_TEXT)
    _write(os.path.join(run, "metrics.json"), METRICS_TEXT)
    if setup is not None:
        setup(d)
    return d, _snapshot(d), _bad_case_command(case, d), _options(case).get("env")


@pytest.fixture(scope="module")
def bad_results(request, tmp_path_factory):
    """``case -> ((dir, snapshot, command, env), future)`` of the bad-input cases.

    In one pytest process every selected case is set up and started at once, WORKERS at a
    time.  Under pytest-xdist (README: ``-n 2``) each worker collects every case but runs only
    those it is given, so a case is started when its test asks for it: the workers are the
    parallelism, and no case runs twice.
    """
    pool = concurrent.futures.ThreadPoolExecutor(1 if os.environ.get("PYTEST_XDIST_WORKER") else WORKERS)
    started = {}

    def start(case):
        if case[0] not in started:
            prepared = _prepare_bad_case(case, tmp_path_factory)
            _, _, cmd, env = prepared
            started[case[0]] = (prepared, pool.submit(_run, cmd, BAD_INPUT_TIMEOUT, env))
        return started[case[0]]

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        selected = {
            item.callspec.params["case"][0] for item in request.session.items
            if getattr(item, "originalname", None) == "test_bad_inputs" and hasattr(item, "callspec")
        }
        for case in BAD_CASES:
            if case[0] in selected and not _options(case).get("in_process"):
                start(case)
    yield start
    for _, fut in started.values():
        fut.cancel()
    pool.shutdown(wait=True)


@pytest.mark.parametrize("case", _params(BAD_CASES))
def test_bad_inputs(case, bad_results):
    case_id, _, _, _, needle = case[:5]
    (d, before, cmd, _), future = bad_results(case)
    proc = future.result()
    where = f"command: {cmd}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr!r}"
    assert proc.returncode == 2, where
    assert "Traceback" not in proc.stderr, where
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, where
    assert lines[0].startswith("error: "), where
    assert needle in lines[0], where
    _assert_untouched(case, d, before, where)


def _run_tool_in_process(cmd):
    """What ``tools/{train,search,nce}.py`` do with ``cmd``'s flags, in this process."""
    from nce_tf.jobs.search import run_search
    from nce_tf.pipeline import run_nce
    from nce_tf.jobs import run_training
    from tool_settings import search_configs, train_config

    tool, *args = cmd
    if tool == TRAIN:
        return run_training(train_config(args))
    return (run_search if tool == SEARCH else run_nce)(*search_configs(args), verbose=False)


@pytest.mark.parametrize("case", _params(BAD_CASES, in_process=True))
def test_bad_inputs_in_process(case, tmp_path_factory):
    from nce_tf.errors import UsageError

    needle = case[4]
    d, before, cmd, _ = _prepare_bad_case(case, tmp_path_factory)
    with pytest.raises(UsageError) as raised:
        _run_tool_in_process(cmd)
    message = " ".join(str(raised.value).split())  # what cli.fail prints after "error: "
    assert needle in message, f"command: {cmd}\nmessage: {message}"
    _assert_untouched(case, d, before, f"command: {cmd}\nmessage: {message}")


def _assert_untouched(case, d, before, where):
    after = _snapshot(d)
    if _options(case).get("may_create"):
        assert set(before) <= set(after), f"files deleted below {d}\n{where}"
    else:
        assert sorted(after) == sorted(before), f"files created or deleted below {d}\n{where}"
    for path, entry in before.items():
        assert after[path] == entry, f"{path} was modified\n{where}"
    with open(os.path.join(d, "run", "keep.txt"), "rb") as f:
        assert f.read() == KEEP_TEXT
    with open(os.path.join(d, "run", "metrics.json"), "rb") as f:
        assert f.read() == METRICS_TEXT


# ----------------------------------------------------------------------- real runs


def _accuracy_on(model, x, y):
    """Top-1 accuracy of a trained model on uint8 images, normalised as the tools document (per channel,
    CIFAR-10's mean and std on the 0..255 scale, for 32x32 npz data)."""
    from nce_tf.data.info import CIFAR10_MEAN, CIFAR10_STD

    logits = model.predict(((x - np.array(CIFAR10_MEAN)) / np.array(CIFAR10_STD)).astype("float32"), verbose=0)
    assert logits.shape == (len(y), 10) and np.all(np.isfinite(logits))
    return float(np.mean(np.argmax(logits, axis=1) == y))


@pytest.mark.heavy
def test_train_short_run_writes_workdir(tmp_path, colour_task):
    run = str(tmp_path / "run")
    npz, x_test, y_test, above_chance = colour_task  # a task short runs learn (tests/conftest.py)
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        f_train = pool.submit(_run, [
            TRAIN, "--model=resnet8", f"--dataset=npz:{npz}", "--w_bits=2", "--a_bits=2", "--epochs=2",
            "--warmup_epochs=1", "--batch_size=32", f"--workdir={run}", "--verbose=0",
        ])
        f_count = pool.submit(_run, [COUNT, "--model=resnet8", "--json"])
        proc, count = f_train.result(), f_count.result()
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert count.returncode == 0, count.stderr
    counted = _json_stdout(count)

    with open(os.path.join(run, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    assert metrics["test_accuracy"] >= above_chance, metrics
    assert metrics["w_bits"] == 2 and metrics["a_bits"] == 2
    assert metrics["epochs"] == 2
    assert metrics["model"] == "resnet8"
    assert metrics["macs"] == counted["macs"]
    assert metrics["params"] == counted["params"]
    assert metrics["widths"] == counted["widths"]

    with open(os.path.join(run, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    assert config["w_bits"] == 2 and config["model"] == "resnet8" and config["epochs"] == 2
    with open(os.path.join(run, "cost.txt"), encoding="utf-8") as f:
        table = f.read()
    # the per-layer table totals the network's cost as the count tool reports it
    assert f"Total MACs: {counted['macs']:,} (" in table and f"Total params: {counted['params']:,} (" in table
    events = [
        f for _, _, files in os.walk(os.path.join(run, "tensorboard")) for f in files
        if f.startswith("events.out.tfevents")
    ]
    assert events, os.listdir(run)
    leftovers = [f for f in os.listdir(run) if f.startswith(".tmp-") or f.endswith(".tmp.keras")]
    assert not leftovers

    import keras

    import nce_tf.layers  # registers the custom layers for safe-mode loading

    model = keras.saving.load_model(os.path.join(run, "model.keras"), safe_mode=True)
    # The last epoch's checkpoint holds the final model's weights.
    last = keras.models.clone_model(model)
    last.load_weights(os.path.join(run, "checkpoints", "last.weights.h5"))
    for a, b in zip(model.weights, last.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    kinds = {type(layer) for layer in model.layers}
    assert nce_tf.layers.QuantConv2D in kinds
    assert nce_tf.layers.QuantActivation in kinds
    # The saved model scores on the test split what metrics.json says (one image's argmax may flip
    # with another summation order: predict's batches are not evaluate's).
    assert abs(_accuracy_on(model, x_test, y_test) - metrics["test_accuracy"]) <= 1 / len(y_test) + 1e-9


def test_train_with_arch_file(tmp_path):
    from nce_tf import arch as arch_lib
    from nce_tf import cost

    widths = [12, 8, 16, 24, 64, 48, 40]  # narrower layers and one at 2X (s2_b0_b: 32 -> 64)
    arch_path = str(tmp_path / "arch.json")
    arch_lib.save_arch(arch_path, "resnet8", widths)
    run = str(tmp_path / "run")
    proc = _run([
        TRAIN, f"--arch={arch_path}", "--dataset=synthetic", "--synthetic_train_size=64",
        "--synthetic_test_size=32", "--epochs=1", "--warmup_epochs=0", "--batch_size=32",
        f"--workdir={run}", "--verbose=0",
    ])
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    with open(os.path.join(run, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    assert metrics["model"] == "resnet8"
    assert metrics["widths"] == widths
    expected = cost.count_arch("resnet8", widths)
    assert metrics["macs"] == expected.macs
    assert metrics["params"] == expected.params
    assert math.isfinite(metrics["test_loss"])
    # The trained network itself has the arch's widths: each searched conv's filters (the s2 and s3
    # shortcut projections follow their block's output), the classifier reading the last width.
    import keras

    import nce_tf.layers  # noqa: F401  registers the quantized layers for loading
    from nce_tf import data, models

    saved = keras.saving.load_model(os.path.join(run, "model.keras"), safe_mode=True)
    names = models.width_names("resnet8")
    assert [saved.get_layer(n).filters for n in names] == widths
    assert [saved.get_layer(f"s{i}_b0_shortcut_conv").filters for i in (2, 3)] == [widths[4], widths[6]]
    assert saved.get_layer("classifier").kernel.shape == (widths[-1], 10)
    # ... and scores the recorded accuracy on the run's test split.
    source = data.get_source("synthetic", seed=0, synthetic_train_size=64, synthetic_test_size=32)
    (x, y), = data.make_pipeline(source.test, source.info, training=False, batch_size=32)
    assert metrics["test_accuracy"] == pytest.approx(np.mean(np.asarray(saved(x)).argmax(1) == np.asarray(y)))


_SUFFIX = {"K": 1e3, "M": 1e6, "G": 1e9}


def _human_close(text, exact):
    """Whether a report figure (``12.50M``, ``19.07KB``, ``432``) is ``exact`` rounded as printed:
    2 decimals of its unit (K, M, G), or 6 significant digits without one."""
    m = re.fullmatch(r"(-?[\d.]+)([KMG]?)B?", text)
    assert m, text
    value, unit = float(m.group(1)), _SUFFIX.get(m.group(2), 1.0)
    slack = 0.005 * unit if m.group(2) else 5e-6 * abs(exact)
    return abs(value * unit - exact) <= slack + 1e-9


def _table(lines, first):
    """The rows (lists of cells) of the markdown table whose first line starts with ``first``."""
    at = next(i for i, ln in enumerate(lines) if ln.startswith(first))
    rows = []
    for ln in lines[at:]:
        if not ln.startswith("|"):
            break
        if not set(ln) <= set("|-: "):
            rows.append([c.strip() for c in ln.strip().strip("|").split("|")])
    return rows


def _parse_report(text):
    """report.md's figures: the title, the headline table by row label, the paragraph's facts and the
    per-layer table as one dict per row, keyed by its header."""
    lines = text.splitlines()
    # Labels by their first word ("MACs", "PARAMs"), whatever follows it; the two-word ones whole.
    head = {row[0] if row[0] in ("weight memory", "test accuracy") else row[0].split()[0]: row[1:]
            for row in _table(lines, "| |")[1:]}
    header, *rows = _table(lines, "| layer")
    facts = re.search(r"Mode `(\w+)`, budget: (\{.*\}); within budget: (True|False)\. "
                      r"Layers expanded beyond 1X: (\d+) of (\d+)\.", text)
    assert facts, text
    return lines[0], head, facts.groups(), [dict(zip(header, r)) for r in rows]


@pytest.mark.heavy
@pytest.mark.slow  # 45 s in the suite (.ci/run runs it with --slow)
def test_nce_pipeline_on_the_quickstart_flagfile(tmp_path, colour_task):
    """The main job end to end (shortened): arch.json, metrics.json, report.md complete and consistent."""
    run = str(tmp_path / "run")
    npz, x_test, y_test, above_chance = colour_task  # a task short runs learn (tests/conftest.py)
    # A threshold just above 1/8 and a larger alpha step, so the 3-epoch search expands layers and
    # derives widths other than the original's (the quickstart's 0.3 keeps them all at 1X here).
    # No search warm-up: one trace of the step (the resume test in test_resume.py runs one).
    proc = _run([
        NCE, "--flagfile=flags/quickstart.flags", f"--workdir={run}", "--model=resnet8", f"--dataset=npz:{npz}",
        "--epochs=2", "--warmup_epochs=1", "--search_warmup_epochs=0", "--search_epochs=3",
        "--search_steps_per_epoch=3", "--threshold=0.13", "--arch_lr=0.05", "--verbose=0",
    ])
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "search epoch 3/3 [search]" in proc.stdout and "expanded layers" in proc.stdout
    with open(os.path.join(run, "arch.json"), encoding="utf-8") as f:
        arch = json.load(f)
    with open(os.path.join(run, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    with open(os.path.join(run, "train", "metrics.json"), encoding="utf-8") as f:
        trained = json.load(f)
    for key in ("model", "widths", "w_bits", "a_bits", "macs", "params", "original_macs", "original_params",
                "search", "num_candidates", "budget", "argmax_widths", "final_probs"):
        assert key in arch, key
    assert (arch["w_bits"], arch["a_bits"], arch["search"]["mode"]) == (2, 2, "nce")
    (f_lo, f_hi), p_hi = arch["budget"]["macs_limits"], arch["budget"]["params_limit"]
    assert arch["within_budget"] and f_lo <= arch["macs"] <= f_hi and arch["params"] <= p_hi
    for key in ("test_accuracy", "macs", "params", "original", "macs_ratio", "params_ratio", "widths"):
        assert key in metrics, key
    assert (metrics["macs"], metrics["params"]) == (arch["macs"], arch["params"])
    # The original network counted here, at the run's bits (the report's memory is at 2 bits).
    from nce_tf import cost, models

    original = {**cost.count_arch("resnet8", policy=models.QuantPolicy(w_bits=2, a_bits=2)).to_dict(),
                "widths": models.default_widths("resnet8")}
    assert original["macs"] == 12501632 and original["params"] == 78042  # the README's zoo table
    assert (metrics["original"]["macs"], metrics["original"]["params"]) == (original["macs"], original["params"])
    assert os.path.exists(os.path.join(run, "train", "model.keras"))
    with open(os.path.join(run, "search_log.jsonl"), encoding="utf-8") as f:
        assert len(f.read().splitlines()) == 3
    # The derived network learnt the task, and its saved model scores what metrics.json says.
    assert metrics["test_accuracy"] == trained["test_accuracy"] >= above_chance, metrics["test_accuracy"]
    import keras

    import nce_tf.layers  # noqa: F401  (registers the custom layers for safe-mode loading)

    model = keras.saving.load_model(os.path.join(run, "train", "model.keras"), safe_mode=True)
    assert abs(_accuracy_on(model, x_test, y_test) - metrics["test_accuracy"]) <= 1 / len(y_test) + 1e-9
    # tools/count.py on the derived arch.json reports the cost arch.json recorded.
    counted = _json_stdout(_run([COUNT, f"--arch={run}/arch.json", "--w_bits=2", "--a_bits=2", "--json"]))
    assert (counted["macs"], counted["params"], counted["widths"]) == (arch["macs"], arch["params"], arch["widths"])

    # report.md's figures, parsed, against metrics.json and the two counts above.
    assert counted["widths"] != original["widths"]  # else the report's two columns could be swapped unseen
    with open(os.path.join(run, "report.md"), encoding="utf-8") as f:
        _check_report(f.read(), metrics, arch, counted, original)


def _check_report(text, metrics, arch, counted, original):
    """report.md against metrics.json, arch.json and count.py's JSON of the derived and original network."""
    title, head, facts, layers = _parse_report(text)
    assert title == f"# NCE report: resnet8 W{metrics['w_bits']}A{metrics['a_bits']}" == "# NCE report: resnet8 W2A2"
    for label, key in (("MACs", "macs"), ("PARAMs", "params")):
        was, now = head[label]
        m = re.fullmatch(r"([\d,]+) \(([\d.]+)x\)", now)
        assert m, now
        assert int(was.replace(",", "")) == original[key] == metrics["original"][key], label
        assert int(m.group(1).replace(",", "")) == counted[key] == metrics[key], label
        assert metrics[f"{key}_ratio"] == pytest.approx(counted[key] / original[key], rel=1e-12)
        assert abs(float(m.group(2)) - counted[key] / original[key]) <= 5e-4 + 1e-12, label  # 3 decimals
    assert _human_close(head["weight memory"][0], original["memory_bytes"]), head["weight memory"]
    assert _human_close(head["weight memory"][1], counted["memory_bytes"]), head["weight memory"]
    assert head["test accuracy"][0] == "-"
    assert abs(float(head["test accuracy"][1]) - metrics["test_accuracy"]) <= 5e-5 + 1e-12  # 4 decimals
    mode, budget, within, expanded, rows = facts
    assert (mode, json.loads(budget), within == "True") == ("nce", metrics["budget"], arch["within_budget"])
    widths, originals = counted["widths"], original["widths"]
    assert (int(expanded), int(rows)) == (sum(w > n for w, n in zip(widths, originals)), len(originals))
    # One row per conv / dense layer of the derived network, as count.py lists them, in order.
    assert [r["layer"] for r in layers] == [r["name"] for r in counted["layers"]]
    before = {r["name"]: r for r in original["layers"]}
    for row, c in zip(layers, counted["layers"]):
        o = before.get(c["name"])
        assert row["kind"] == c["kind"] and row["W bits"] == str(c["w_bits"]), row
        assert row["derived in/out"] == f"{c['in_channels']}/{c['out_channels']}", row
        assert row["original in/out"] == (f"{o['in_channels']}/{o['out_channels']}" if o else "- (projection added)")
        for column, key in (("MACs", "macs"), ("PARAMs", "params"), ("memory", "memory_bytes")):
            assert _human_close(row[column], c[key]), (row, column, c[key])
