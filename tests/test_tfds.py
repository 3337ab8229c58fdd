"""TFDS datasets prepared on first use (``cifar10``, ``tfds:NAME``), offline.

The datasets are the tiny builders of ``tfds_fakes.py``: TFDS "downloads" them by running
their code, or fails as it does without network. Every bad input is one line naming the
value, and leaves the TFDS data directory as it was.
"""

import os
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

import tfds_fakes  # noqa: F401  registers the fake datasets with TFDS
from nce_tf.data import get_source, make_pipeline
from nce_tf.errors import UsageError
from nce_tf.sources import source_for

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _one_line(excinfo, *needles):
    message = str(excinfo.value)
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, (needle, message)


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, dirs, files in os.walk(root) for f in dirs + files)


def test_first_use_prepares_the_dataset_in_the_data_dir_then_reuses_it(tmp_path, capsys):
    source = get_source("tfds:nce_fake_images", tfds_data_dir=str(tmp_path))
    assert "preparing TFDS dataset nce_fake_images/1.0.0" in capsys.readouterr().out
    assert os.path.isdir(tmp_path / "nce_fake_images" / "1.0.0")
    info = source.info
    assert (info.kind, info.image_shape, info.num_classes) == ("cifar", (32, 32, 3), 3)
    assert (info.num_train, info.num_test, info.name) == (12, 6, "tfds:nce_fake_images")
    image, label = next(iter(source.train))
    assert image.dtype == tf.uint8 and image.shape == (32, 32, 3) and label.dtype == tf.int64
    assert sorted(int(y) for _, y in source.test) == [0, 0, 1, 1, 2, 2]

    again = get_source("tfds:nce_fake_images:1.0.0", tfds_data_dir=str(tmp_path), download=False)
    assert "preparing" not in capsys.readouterr().out
    np.testing.assert_array_equal(next(iter(again.train))[0].numpy(), image.numpy())


def test_varying_sizes_are_imagenet_kind_and_validation_is_the_test_split(tmp_path):
    source = get_source("tfds:nce_fake_varied_images", tfds_data_dir=str(tmp_path))
    info = source.info
    assert (info.kind, info.image_shape, info.num_classes, info.num_test) == ("imagenet", (224, 224, 3), 4, 4)
    x, y = next(iter(make_pipeline(source.test, info, training=False, batch_size=4)))
    assert x.shape == (4, 224, 224, 3)


def test_nodownload_refuses_an_unprepared_dataset(tmp_path):
    with pytest.raises(UsageError) as excinfo:
        get_source("tfds:nce_fake_images", tfds_data_dir=str(tmp_path), download=False)
    _one_line(excinfo, "'tfds:nce_fake_images'", str(tmp_path), "--nodownload", "tfds build nce_fake_images")
    assert _files(tmp_path) == []


@pytest.mark.parametrize("name, reason", [
    ("nce_fake_failing", "no network"),
    ("nce_fake_missing_module", "pip install importlib_resources"),
])
def test_a_failed_download_names_the_dataset_and_the_directory(tmp_path, name, reason):
    data_dir = tmp_path / "tfds"
    with pytest.raises(UsageError) as excinfo:
        get_source(f"tfds:{name}", tfds_data_dir=str(data_dir))
    _one_line(excinfo, f"'{name}'", str(data_dir), reason)
    assert not data_dir.exists()
    data_dir.mkdir()  # an existing data dir keeps what it holds, and gains nothing
    (data_dir / "keep.txt").write_text("mine")
    with pytest.raises(UsageError):
        get_source(f"tfds:{name}", tfds_data_dir=str(data_dir))
    assert _files(data_dir) == ["keep.txt"]


def test_imagenet_says_where_its_manual_download_goes(tmp_path):
    for name in ("imagenet2012", "imagenet2012_subset"):
        with pytest.raises(UsageError) as excinfo:
            get_source(name, tfds_data_dir=str(tmp_path))
        _one_line(excinfo, "manual download", os.path.join(str(tmp_path), "downloads", "manual"),
                  "ILSVRC2012_img_train.tar")
    assert _files(tmp_path) == []


@pytest.mark.parametrize("name, needles", [
    ("tfds:nce_no_such_images", ["'tfds:nce_no_such_images'", "tfds:NAME"]),
    ("tfds:cifar1000", ["'tfds:cifar1000'", "Did you mean tfds:cifar100"]),
    ("tfds:nce_fake_images:9.9.9", ["'tfds:nce_fake_images:9.9.9'", "9.9.9"]),
    ("tfds:nce_fake_text", ["'tfds:nce_fake_text'", "'image' feature", "['label', 'text']"]),
    ("tfds:nce_fake_gray", ["'tfds:nce_fake_gray'", "(28, 28, 1)", "(H, W, 3)"]),
    ("tfds:nce_fake_one_class", ["'tfds:nce_fake_one_class'", "1 classes", "2 or more"]),
    ("tfds:", ["'tfds:'", "tfds:cifar100"]),
    ("mnist", ["'mnist'", "tfds:mnist"]),
])
def test_bad_names_and_datasets_write_nothing(tmp_path, name, needles):
    with pytest.raises(UsageError) as excinfo:
        get_source(name, tfds_data_dir=str(tmp_path))
    _one_line(excinfo, *needles)
    assert _files(tmp_path) == []


def test_a_dataset_without_a_test_split_is_refused(tmp_path):
    with pytest.raises(UsageError) as excinfo:
        get_source("tfds:nce_fake_train_only", tfds_data_dir=str(tmp_path))
    _one_line(excinfo, "'tfds:nce_fake_train_only'", "['train']", "'test'")


def _user_model(path, input_shape, classes):
    import keras

    i = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(i)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)  # the first conv is pinned: one to search
    keras.Model(i, keras.layers.Dense(classes)(keras.layers.GlobalAveragePooling2D()(x))).save(path)
    return f"keras:{path}"


def _config(tmp_path, model, dataset="tfds:nce_fake_images"):
    return types.SimpleNamespace(dataset=dataset, model=model, tfds_data_dir=str(tmp_path / "tfds"), seed=0,
                                 synthetic_train_size=64, synthetic_test_size=32, subset_per_class=1, download=True)


@pytest.mark.parametrize("input_shape, classes, needles", [
    ((16, 16, 3), 3, ["(32, 32, 3)", "(16, 16, 3)"]),
    ((32, 32, 3), 10, ["3 classes", "10 outputs"]),
])
def test_data_that_does_not_fit_a_users_model_is_refused_before_the_download(tmp_path, input_shape, classes, needles):
    model = _user_model(str(tmp_path / "m.keras"), input_shape, classes)
    with pytest.raises(UsageError) as excinfo:
        source_for(_config(tmp_path, model))
    _one_line(excinfo, *needles)
    assert not (tmp_path / "tfds").exists()


def test_the_nodownload_flag_is_a_runtime_setting():
    from absl import flags

    from nce_tf.cli import config_flags
    from nce_tf.train import TrainConfig

    values = flags.FlagValues()
    config_flags.define_flags(values)
    values(["prog", "--nodownload", "--dataset=tfds:cifar100"])
    config = config_flags.config_from_flags(values)
    assert config.download is False and config.dataset == "tfds:cifar100"
    assert "download" not in config.run_settings()  # a run may resume with or without it


_TOOL = """
import runpy, sys
from nce_tf import cli
cli.load_tensorflow()  # quietly, as the tool would, before TFDS and the fakes import it
sys.path.insert(0, "tests")
import tfds_fakes
sys.argv = ["tools/train.py"] + sys.argv[1:]
runpy.run_path("tools/train.py", run_name="__main__")
"""


def test_the_train_tool_reports_a_failed_download_as_one_line_and_exit_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = REPO
    proc = subprocess.run(
        [sys.executable, "-c", _TOOL, f"--workdir={tmp_path / 'run'}", "--dataset=tfds:nce_fake_failing",
         f"--tfds_data_dir={tmp_path / 'tfds'}", "--epochs=1", "--warmup_epochs=0"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Could not download"), proc.stderr
    assert "nce_fake_failing" in lines[0] and str(tmp_path / "tfds") in lines[0]
    assert "preparing TFDS dataset nce_fake_failing" in proc.stdout
    assert _files(tmp_path) == []
