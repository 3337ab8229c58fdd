"""The instruments that judge a search (issue 25): the arch steps' diagnostics in ``search_log.jsonl``,
the Kendall score without the just-expanded zero entry, its ``min_ratio`` option and size measure
over seeds, and ``--arch_balance=split`` (one Adam per part of alpha's gradient)."""

import glob
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_search import _configs

import nce_tf
from nce_tf import cost, data, distribute, sources
from nce_tf.analysis import kendall
from nce_tf.errors import UsageError
from nce_tf.jobs import search as search_job
from nce_tf.jobs.checkpoint import RunState
from nce_tf.jobs.search import PROBE_IMAGES, _Search, run_search, split_halves
from nce_tf.jobs.search_log import subnet_accuracy
from nce_tf.models import QuantPolicy
from nce_tf.search import SearchConfig
from nce_tf.search.callbacks import TauSchedule
from nce_tf.search.expansion import expand

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _one_row_net(balance="shared", lr=1e-2):
    """A float one-row super-net (conv 16 -> BN -> ReLU -> GAP -> dense 2), FLOPs target 1.9X: every
    architecture of its 1X..2X grid lies under the band, so the MACs term always pushes up."""
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", use_bias=False)(inp)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    net = nce_tf.adapt(model, w_bits=32, a_bits=32, search_first=True, flops_ratio=1.9, params_ratio=0, seed=0)
    net.configure_optimizers(keras.optimizers.SGD(0.0), keras.optimizers.Adam(lr, beta_1=0.5, beta_2=0.999),
                             arch_weight_decay=1e-3, arch_balance=balance)
    net.set_arch_updates(True)
    return net


def _row(values):
    out = np.zeros((1, 16), "float32")
    out[0, :len(values)] = values
    return tf.constant(out)


# ------------------------------------------------------------------ the per-epoch gradient record


def test_an_expanded_entry_is_averaged_over_its_own_steps_and_never_recorded_as_zero():
    # Two arch steps (accounted as _arch_step accounts them, with hand-made gradients): an expansion
    # between them (mid-epoch, 8 -> 9 candidates) and one after the last (9 -> 10, the per-epoch check).
    net = _one_row_net()
    alpha = np.zeros((1, 16), "float32")
    alpha[0, 7] = 3.0  # the widest candidate's probability ~0.74 > T: each check expands
    net.alpha.assign(alpha)
    g1, g2 = [0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1], [0.6, 0.9, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, -0.4]
    c1, c2 = [-1.0] * 8, [-2.0] * 9
    for g, c in ((g1, c1), (g2, c2)):
        live = tf.cast(net.live_mask(), tf.float32)
        net._record_arch_step(_row(g) * live, _row(c) * live, live, net.cost_terms())
        assert expand(net, threshold=0.3) == [0]
    assert net.num_candidates.numpy().tolist() == [10]
    d = net.take_arch_diagnostics()
    # Entries 0-7: mean of both steps; entry 8: its one step (not halved); entry 9: live in none, left out.
    want = [(a + b) / 2 for a, b in zip(g1, g2)] + [-0.4]
    assert d["alpha_grad_ce"][0] == pytest.approx(want) and d["alpha_grad_steps"] == 2
    assert d["alpha_grad_cost"][0] == pytest.approx([-1.5] * 8 + [-2.0])
    assert d["alpha_grad_norm_ce"] == pytest.approx([(np.linalg.norm(g1) + np.linalg.norm(g2)) / 2])
    assert d["alpha_grad_norm_cost"] == pytest.approx([(np.sqrt(8) + 2 * 3) / 2])
    assert d["cost_active"] == {"macs": {"down": 0.0, "up": 1.0}}  # params unbudgeted: not listed
    # Taken: everything starts afresh.
    again = net.take_arch_diagnostics()
    assert again["alpha_grad_ce"] == [] and again["alpha_grad_steps"] == 0 and again["cost_active"] == {}

    # The record as Kendall reads it: one discordant pair (entries 0, 1) of 36: tau = 34 / 36.  The
    # old record's trailing 0 for entry 9 would have made entry 8 (-0.4) discordant with it as well:
    # 2 of 45 pairs, tau = 41 / 45.
    log = [{"epoch": 1, "phase": "search", "num_candidates": [10], "expanded_rows": [0],
            "alpha_grad_steps": 2, "alpha_grad_ce": d["alpha_grad_ce"], "alpha_grad_cost": d["alpha_grad_cost"]}]
    assert kendall.layer_scores(log) == pytest.approx([34 / 36])
    assert kendall.layer_scores([{**log[0], "alpha_grad_ce": [want + [0.0]]}]) == pytest.approx([41 / 45])


def test_a_log_written_before_the_fix_is_cut_back_to_the_candidates_live_all_epoch():
    # Without alpha_grad_steps a record is the old kind: the row it expanded (row 0, 8 -> 9) holds
    # the new entry as 0; row 1 did not expand and keeps all its entries.
    g = [0.3, 0.2, 0.1, 0.0, -0.1, -0.2, -0.3, -0.4]
    log = [{"epoch": 1, "phase": "warmup", "num_candidates": [8, 8], "alpha_grad_ce": []},
           {"epoch": 2, "phase": "search", "num_candidates": [9, 8], "expanded_rows": [0],
            "alpha_grad_ce": [g + [0.0], g]}]
    assert kendall.search_gradients(log) == [(2, [g, g])]
    assert kendall.layer_scores(log) == pytest.approx([1.0, 1.0])
    # Read as a new record, the 0 stays: 3 concordant, 1 tied and 4 discordant pairs with it.
    assert kendall.layer_scores([{**log[1], "alpha_grad_steps": 3}]) == pytest.approx([27 / np.sqrt(36 * 35), 1.0])


# ------------------------------------------------------------------ score, min_ratio, size measure

# One layer, 8 candidates (the NCE grid: ratio (j + 1) / 8), three search epochs, worked by hand:
# -g's order: epoch 1 has one discordant pair (1, 2), epoch 2 one (0, 1), epoch 3 has the n/8
# candidate first against all 7 others; from n/2 up (candidates 3-7) every epoch is in order.
EPOCHS = [[0.5, 0.1, 0.2, 0.0, -0.1, -0.2, -0.3, -0.4],
          [0.2, 0.3, 0.1, 0.0, -0.1, -0.2, -0.3, -0.5],
          [-0.9, 0.3, 0.2, 0.1, 0.0, -0.1, -0.2, -0.3]]


def _log(epochs):
    return [{"epoch": e + 1, "phase": "search", "num_candidates": [8], "expanded_rows": [], "alpha_grad_steps": 5,
             "alpha_grad_ce": [g], "alpha_grad_cost": [[0.0, -1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0]]}
            for e, g in enumerate(epochs)]


def _t(d):
    d = np.array(d)
    return d.mean() / (np.sqrt(((d - d.mean()) ** 2).sum() / (len(d) - 1)) / np.sqrt(len(d)))


def test_score_min_ratio_and_size_measure_worked_by_hand():
    (all_,) = kendall.layer_stats(_log(EPOCHS))
    assert all_["score"] == pytest.approx((26 + 26 + 14) / (3 * 28)) and all_["epochs"] == 3
    # gap: g[narrowest] - g[widest] per epoch = 0.9, 0.7, -0.6.
    assert all_["gap"] == pytest.approx(1.0 / 3) and all_["gap_t"] == pytest.approx(_t([0.9, 0.7, -0.6]))
    assert all_["gap_t"] == pytest.approx(0.7089, abs=1e-4)
    (half,) = kendall.layer_stats(_log(EPOCHS), min_ratio=0.5)
    assert half["score"] == pytest.approx(1.0)
    assert half["gap"] == pytest.approx(1.3 / 3) and half["gap_t"] == pytest.approx(13.0)  # 0.4, 0.5, 0.4
    # Other grids: the ratios given (arch.json's candidates / original widths) pick the candidates:
    # TAS's 0.3, ..., 1.0 from 0.4 up ranks candidates 1-7 (epoch 1: one discordant pair of 21); the
    # NCE grid ranks 3-7 there (every epoch in order).
    ratios = [[0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]]
    assert kendall.layer_scores(_log(EPOCHS), min_ratio=0.4, ratios=ratios) == pytest.approx([(19 / 21 + 2) / 3])
    assert kendall.layer_scores(_log(EPOCHS), min_ratio=0.4) == pytest.approx([1.0])
    assert kendall.layer_stats(_log(EPOCHS[:1]))[0]["gap_t"] is None  # one epoch: no standard error
    assert kendall.layer_scores(_log(EPOCHS), "cost") == [1.0]


def _workdir(path, epochs, seed):
    os.makedirs(path)
    with open(os.path.join(path, "search_log.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in _log(epochs))
    with open(os.path.join(path, "search_config.json"), "w", encoding="utf-8") as f:
        json.dump({"seed": seed}, f)
    return str(path)


def test_groups_over_seeds_from_the_analyze_command(tmp_path, figure_data):
    # Two "quantized" seeds and two "float" seeds; the float ones prefer narrow (-g reversed).
    quant = [_workdir(tmp_path / f"q{s}", EPOCHS if s == 0 else EPOCHS[:2], s) for s in (0, 1)]
    flt = [_workdir(tmp_path / f"f{s}", [g[::-1] for g in EPOCHS], s) for s in (0, 1)]
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, os.path.join("tools", "analyze.py"), "kendall",
                           f"--group=W2A2={','.join(quant)}", f"--group=W32A32={','.join(flt)}", f"--out={out}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with open(out / "kendall.json", encoding="utf-8") as f:
        summary = json.load(f)
    s0, s1 = (26 + 26 + 14) / (3 * 28), 26 / 28  # seed 1 ran the first two epochs only
    assert summary["scores"]["W2A2"] == pytest.approx([(s0 + s1) / 2])
    assert summary["spread"]["W2A2"] == pytest.approx([abs(s0 - s1) / np.sqrt(2)])  # std, ddof 1
    assert summary["gap_t"]["W2A2"] == pytest.approx([(_t([0.9, 0.7, -0.6]) + _t([0.9, 0.7])) / 2])
    assert summary["scores"]["W32A32"] == pytest.approx([-s0]) and summary["spread"]["W32A32"] == [0.0]
    assert summary["groups"]["W2A2"]["seeds"] == [0, 1]
    assert "| 0 | +0.86 +- 0.10, +4.4 | -0.79 +- 0.00, -0.7 |" in proc.stdout
    assert os.path.getsize(out / "kendall.png") > 1000  # the command drew it; its numbers, in this process:
    kendall.run({"W2A2": quant, "W32A32": flt}, str(tmp_path))
    top, bottom = figure_data["kendall.png"]
    # Top: the one layer's CE gradient of each candidate over the 3 epochs (the first group's first seed).
    assert [list(y) for _, _, y in top["lines"]] == [[g[j] for g in EPOCHS] for j in range(8)]
    # Bottom: each group's mean score with its spread over seeds as the bar (0 for the float group).
    points = [(list(x), list(y)) for marker, x, y in bottom["lines"] if marker == "o"]
    assert points == [([0], pytest.approx([(s0 + s1) / 2])), ([0], pytest.approx([-s0]))]
    spread = abs(s0 - s1) / np.sqrt(2)
    np.testing.assert_allclose([s[:, 1] for s in bottom["segments"]],
                               [[(s0 + s1) / 2 - spread, (s0 + s1) / 2 + spread], [-s0, -s0]], rtol=1e-12)
    bad = subprocess.run([sys.executable, os.path.join("tools", "analyze.py"), "kendall", f"--group={quant[0]}",
                          f"--out={tmp_path / 'bad'}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Invalid --group" in bad.stderr and not os.path.exists(tmp_path / "bad")


# ------------------------------------------------------------------ arch_balance


def test_arch_balance_is_a_later_field_and_validated():
    assert "arch_balance" not in SearchConfig().to_dict()  # old runs' recorded settings are unchanged
    assert SearchConfig(arch_balance="split").validate().to_dict()["arch_balance"] == "split"
    with pytest.raises(UsageError, match="Invalid arch_balance. Received: arch_balance='both'. Allowed: shared, split"):
        SearchConfig(arch_balance="both").validate()


def _adam(g, m, v, t, lr=1e-2, b1=0.5, b2=0.999, eps=1e-7):
    m, v = m + (g - m) * (1 - b1), v + (g * g - v) * (1 - b2)
    return lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps), m, v


def test_split_balance_steps_alpha_as_two_numpy_adams():
    rng = np.random.default_rng(0)
    batch = (rng.normal(size=(8, 8, 8, 3)).astype("float32"), np.arange(8) % 2)
    net = _one_row_net("split")
    assert len([v for v in net.arch_optimizer.variables if tuple(v.shape) == (1, 16)]) == 4  # expansion copies all
    alpha = net.alpha.numpy()[0, :8].astype("float64")
    m = {k: np.zeros(8) for k in ("ce", "cost", "shared")}
    v = {k: np.zeros(8) for k in ("ce", "cost", "shared")}
    shared = alpha.copy()
    for t in (1, 2):
        net.train_on_batch(batch, batch)
        grads = net.take_alpha_grads()
        ce, rest = np.array(grads["ce"][0]), np.array(grads["cost"][0]) + 1e-3 * alpha
        step_ce, m["ce"], v["ce"] = _adam(ce, m["ce"], v["ce"], t)
        step_cost, m["cost"], v["cost"] = _adam(rest, m["cost"], v["cost"], t)
        alpha = alpha - step_ce - step_cost
        step, m["shared"], v["shared"] = _adam(ce + np.array(grads["cost"][0]) + 1e-3 * shared, m["shared"],
                                               v["shared"], t)
        shared = shared - step
        np.testing.assert_allclose(net.alpha.numpy()[0, :8], alpha, rtol=1e-5, atol=1e-7)
    assert np.abs(alpha - shared).max() > 1e-3  # one shared Adam would have stepped elsewhere
    assert not net.alpha.numpy()[0, 8:].any()  # the dead entries stay put


# ------------------------------------------------------------------ a tiny real search


class _AlphaBeforeEachStep(TauSchedule):
    """The search's own tau callback, also keeping each step's argmax widths as the step begins (the
    weight step leaves alpha alone: they are the widths the step's arch step sees)."""

    argmax = []

    def on_train_batch_begin(self, batch, logs=None):
        net = self.model
        live = np.arange(net.alpha.shape[1]) < net.num_candidates.numpy()[:, None]
        index = np.where(live, net.alpha.numpy(), -np.inf).argmax(axis=1)
        self.argmax.append([int(net.table_np[r, j]) for r, j in enumerate(index)])


@pytest.mark.heavy
def test_search_log_records_the_instruments_of_a_real_search(tmp_path, monkeypatch):
    # One warm-up-free search epoch of 3 steps, split balance.  A 3.5X FLOPs target lies above every
    # architecture of the 8 live candidates (<= 1X), so the MACs term pushes up in every step; the
    # weight memory has a ceiling only (0.4 of the original, tolerance 1), so it never pushes up.
    tcfg, scfg = _configs(tmp_path, search_warmup_epochs=0, search_epochs=1, search_steps_per_epoch=3,
                          flops_ratio=3.5, params_ratio=0, memory_ratio="0.4", memory_tolerance=1.0,
                          arch_lr=0.05, arch_balance="split", enforce_budget=False, supernet_epochs=1)
    monkeypatch.setattr(search_job, "TauSchedule", _AlphaBeforeEachStep)
    monkeypatch.setattr(_AlphaBeforeEachStep, "argmax", [])
    found = run_search(tcfg, scfg, verbose=False)
    # The single-path phase ran first (one epoch of the 3 steps) and is recorded with its settings.
    assert found["supernet_training"]["epochs"] == 1 and found["supernet_training"]["lr"] == pytest.approx(0.002)
    with open(tmp_path / "supernet_training.json", encoding="utf-8") as f:
        assert found["supernet_training"]["history"] == json.load(f) and len(found["supernet_training"]["history"]) == 1
    (record,) = [json.loads(line) for line in open(tmp_path / "search_log.jsonl", encoding="utf-8")]
    with open(tmp_path / "search_config.json", encoding="utf-8") as f:
        settings = json.load(f)
        assert settings["arch_balance"] == "split" and settings["supernet_epochs"] == 1
    assert record["alpha_grad_steps"] == 3
    assert record["cost_active"]["macs"] == {"down": 0.0, "up": 1.0}
    memory = record["cost_active"]["memory_bytes"]
    assert set(record["cost_active"]) == {"macs", "memory_bytes"} and memory["up"] == 0.0  # a ceiling: never up
    # Down in the steps whose argmax network, as Keras counts it at the search's bits, exceeds the ceiling
    # (measured: 9482, 22552, 12202 bytes against 9917, so down = 2/3: steps of both kinds).
    policy = QuantPolicy(w_bits=2, a_bits=2)
    ceiling = 0.4 * cost.count_arch("resnet8", policy=policy, float_bits=scfg.float_bits).memory_bytes
    above = [cost.count_arch("resnet8", w, policy=policy, float_bits=scfg.float_bits).memory_bytes > ceiling
             for w in _AlphaBeforeEachStep.argmax]
    assert len(above) == 3 and memory["down"] == pytest.approx(np.mean(above), abs=1e-7) and len(set(above)) == 2
    # Mean of the norms >= norm of the mean (triangle inequality), per row and part; both recorded.
    for part in ("ce", "cost"):
        norms, grads = record[f"alpha_grad_norm_{part}"], record[f"alpha_grad_{part}"]
        assert len(norms) == 7 and all(n >= np.linalg.norm(g) * (1 - 1e-6) for n, g in zip(norms, grads))
    assert min(record["alpha_grad_norm_cost"]) > 0
    # TensorBoard holds the same instruments as scalars.
    tags = {value.tag for path in glob.glob(str(tmp_path / "tensorboard" / "search" / "events.*"))
            for event in tf.compat.v1.train.summary_iterator(path) for value in event.summary.value}
    assert {"diagnostics/subnet_1x_accuracy", "diagnostics/cost_macs_up", "diagnostics/cost_memory_bytes_down",
            "grad_norm/stem_conv/ce", "grad_norm/stem_conv/cost", "pact/stem_act"} <= tags

    # The state the record was taken from (the epoch's checkpoint follows the log; the instruments
    # are not in it), restored into the job's own run state, evaluated independently on the same
    # slice of the arch half.
    job = _Search(tcfg, scfg, verbose=False)
    job.prepare(distribute.get_strategy("default", 0))
    trackables = job.build()
    assert {"arch_optimizer", "arch_cost_optimizer", "layer_statistics"} <= set(trackables)
    assert RunState(str(tmp_path / "search" / "checkpoints"), **trackables).restore()[0] == 1
    keys = tf.train.load_checkpoint(str(tmp_path / "search" / "checkpoints")).get_variable_to_shape_map()
    assert not any(name in k for k in keys for name in ("live_steps", "norm_sum", "cost_active"))
    net = job.net
    assert record["pact_clips"] == {a.name: pytest.approx(float(a.alpha.numpy()), abs=0) for a in net.act_layers}
    assert len(record["pact_clips"]) == 7 and all(v != 4.0 for v in record["pact_clips"].values())  # trained
    source = sources.source_for(tcfg)
    _, ds_a, _ = split_halves(source, scfg.split_seed)
    widths = [r.n for r in net.space.rows]
    index = [int(np.flatnonzero(net.table_np[r] == w)[0]) for r, w in enumerate(widths)]
    pair = lambda v: tf.constant(np.repeat(np.array(v)[:, None], 2, axis=1), tf.int32)  # noqa: E731
    sample = (pair(widths), pair(index), tf.fill([7, 2], 0.5))
    # The slice as one batch, each layer normalised by its statistics, in training mode; the read-out
    # leaves the running statistics as they were.
    (x, y), = data.make_pipeline(ds_a.take(PROBE_IMAGES), source.info, training=False, batch_size=PROBE_IMAGES)
    before = [v.numpy() for v in net.statistics_variables()]
    assert subnet_accuracy(net, [(x, y)]) == record["subnet_1x_accuracy"] and record["subnet_1x_statistics"] == "batch"
    for v, value in zip(net.statistics_variables(), before):
        np.testing.assert_array_equal(v.numpy(), value)
    hits = np.argmax(net.forward(x, sample, training=True)[0].numpy(), axis=-1) == y.numpy()
    assert hits.size == min(PROBE_IMAGES, int(ds_a.cardinality())) > 100
    assert record["subnet_1x_accuracy"] == pytest.approx(np.mean(hits), abs=1e-12)
    inference = np.mean(np.argmax(net.forward(x, sample, training=False)[0].numpy(), axis=-1) == y.numpy())
    assert subnet_accuracy(net, [(x, y)], statistics="running") == pytest.approx(inference, abs=1e-12)
