"""Datasets and search methods are registries: one class registered in a test is usable everywhere.

A dataset registered here (no other file touched) is accepted by ``TrainConfig``, loaded by
``nce_tf.data.get_source`` and trained on; a search method registered here is accepted by
``SearchConfig`` and run by the search job.  The registries stay importable without TensorFlow.
"""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from nce_tf.data import DATASETS, Dataset, get_source, register_dataset
from nce_tf.data.info import info_for_images
from nce_tf.data.memory import source_from_arrays
from nce_tf.errors import UsageError
from nce_tf.jobs.search import run_search
from nce_tf.jobs.train import run_training
from nce_tf.search import METHODS, SearchConfig, SearchMethod, register_method
from nce_tf.sources import build_space
from nce_tf.train import TrainConfig

SIDE, CLASSES = 32, 3


def _bars(n, rng):
    """Images whose class is the one bright third of the rows (0, 1 or 2): learnable, three classes."""
    y = np.arange(n) % CLASSES
    x = rng.integers(0, 60, (n, SIDE, SIDE, 3)).astype(np.uint8)
    for i, label in enumerate(y):
        x[i, label * SIDE // 3:(label + 1) * SIDE // 3] += 180
    return x, y


@pytest.fixture
def bars():
    @register_dataset
    class Bars(Dataset):
        name, help = "test_bars", "three bright bands, made in the test"
        loads = []

        def load(self, value, options):
            self.loads.append(options.seed)
            rng = np.random.default_rng(options.seed)
            return source_from_arrays(*_bars(96, rng), *_bars(48, rng), info_for_images(value, SIDE, SIDE, CLASSES, 96, 48))

    yield DATASETS["test_bars"]
    DATASETS.pop("test_bars")


def test_a_registered_dataset_is_listed_checked_and_loaded(bars):
    TrainConfig(workdir="w", dataset="test_bars").validate()  # the config's TF-free check accepts it
    with pytest.raises(UsageError, match="test_bars"):  # and errors list it among the allowed names
        TrainConfig(workdir="w", dataset="bars").validate()
    source = get_source("test_bars", seed=5)
    assert bars.loads == [5]  # the registered class did the loading, with the run's seed
    x, y = source.train_arrays
    assert x.shape == (96, SIDE, SIDE, 3) and source.info.num_classes == CLASSES
    assert np.array_equal(np.bincount(y), [32, 32, 32])


def test_a_tiny_training_on_a_registered_dataset(bars, tmp_path):
    config = TrainConfig(workdir=str(tmp_path), model="resnet8", dataset="test_bars", epochs=1, warmup_epochs=0,
                         batch_size=32, seed=1, verbose=0)
    metrics = run_training(config)
    assert bars.loads == [1]
    assert metrics["dataset"] == "test_bars" and metrics["num_classes"] == CLASSES
    model = keras.models.load_model(tmp_path / "model.keras")
    assert model.output_shape == (None, CLASSES)  # the network was built for this dataset's classes


def test_dataset_names_and_their_check_load_no_tensorflow():
    code = ("import sys; from nce_tf.data.registry import DATASETS, check_dataset_name; "
            "import nce_tf.search.config, nce_tf.train.config; check_dataset_name('npz:/x.npz'); "
            "print(list(DATASETS), sorted({'tensorflow', 'keras'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['synthetic', 'cifar10', 'imagenet2012', 'imagenet2012_subset', 'npz', 'tfds'] []"


@pytest.fixture
def half_width():
    @register_method
    class HalfWidth(SearchMethod):
        """Every row at half its original width, rounded up: no search."""

        name, help, trains = "test_half", "half of every width", False

        def widths(self, space, budget, *, seed, table, k_caps):
            return [max(1, (n + 1) // 2) for n in space.default_widths()]

    yield METHODS["test_half"]
    METHODS.pop("test_half")


def test_a_registered_search_method_is_run_by_the_search_job(half_width, tmp_path):
    with pytest.raises(UsageError, match="test_half"):
        SearchConfig(mode="half").validate()
    tcfg = TrainConfig(workdir=str(tmp_path), model="resnet8", synthetic_train_size=64, synthetic_test_size=32,
                       seed=0, verbose=0)
    record = run_search(tcfg, SearchConfig(mode="test_half", flops_ratio=0.3, params_ratio=0), verbose=False)
    space = build_space("resnet8")
    half = [(n + 1) // 2 for n in space.default_widths()]  # resnet8: 16, 32, 64 -> 8, 16, 32
    assert record["widths"] == half == json.loads((tmp_path / "arch.json").read_text())["widths"]
    assert record["macs"] == space.exact_cost(half)[0]
    assert not (tmp_path / "search" / "checkpoints").exists()  # no super-net, no run state
