"""``restore_search``: a finished search's job rebuilt from its recorded settings, at its last checkpoint."""

import json
import shutil

import numpy as np
import pytest

from nce_tf.errors import UsageError
from nce_tf.jobs.search import restore_search, run_search
from nce_tf.search import SearchConfig
from nce_tf.train import TrainConfig


def test_a_restored_search_is_the_super_net_the_search_left(tmp_path):
    """The settings it ran with (a non-default merge and grid included), its live candidates and alpha:
    the softmax of the restored alpha over each row's live candidates is arch.json's final_probs."""
    workdir = tmp_path / "search"
    record = run_search(
        TrainConfig(workdir=str(workdir), model="resnet8", w_bits=2, a_bits=2, synthetic_train_size=64,
                    synthetic_test_size=16, seed=3, verbose=0),
        SearchConfig(search_warmup_epochs=0, search_epochs=1, search_batch_size=16, search_steps_per_epoch=2,
                     width_ratios="0.75,0.875,1", pair_merge="pad", arch_lr=0.05, threshold=0.5),
        verbose=False)
    tcfg, scfg, job = restore_search(str(workdir))
    assert (tcfg.seed, tcfg.w_bits, scfg.pair_merge, scfg.width_ratios) == (3, 2, "pad", "0.75,0.875,1")
    net = job.net
    assert {lay.pair_merge for lay in net.conv_layers if hasattr(lay, "pair_merge")} == {"pad"}
    k = net.num_candidates.numpy()
    assert k.tolist() == record["num_candidates"]
    alpha = net.alpha.numpy().astype("float64")
    probs = [np.exp(a[:n] - a[:n].max()) / np.exp(a[:n] - a[:n].max()).sum() for a, n in zip(alpha, k)]
    for got, want in zip(probs, record["final_probs"]):
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert not np.allclose(alpha[:, :3], alpha[0, 0])  # alpha moved from its init: a real restore, not the start


def test_restore_search_refuses_what_is_not_a_search(tmp_path):
    with pytest.raises(UsageError, match="Not a search work directory"):
        restore_search(str(tmp_path))
    workdir = tmp_path / "s"
    run_search(TrainConfig(workdir=str(workdir), model="resnet8", w_bits=32, a_bits=32, synthetic_train_size=64,
                           synthetic_test_size=16, verbose=0),
               SearchConfig(search_warmup_epochs=0, search_epochs=1, search_batch_size=16, search_steps_per_epoch=1),
               verbose=False)
    shutil.rmtree(workdir / "search" / "checkpoints")
    with open(workdir / "search_config.json") as f:
        assert json.load(f)["model"] == "resnet8"
    with pytest.raises(UsageError, match="No search checkpoint"):
        restore_search(str(workdir))
