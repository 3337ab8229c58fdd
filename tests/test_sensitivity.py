"""The width-sensitivity probe (issue 25): nce_tf.analysis.sensitivity, its report and ``nce-tf analyze sensitivity``.

- BN re-estimation of a sub-network: every candidate it uses holds the mean of its batch statistics,
  computed here independently with ``tf.nn.conv2d`` for the stem;
- the probe on a constructed network with a known answer: a 2-channel 1x1 bottleneck between wide
  layers, whose narrowing must cost the most (its widening: nce_tf/analysis/known_answer.py);
- the report's intervals and comparison against hand computations, and every number its files
  (``sensitivity.json``, ``.md``, the figure's points and bars) against statistics worked out here;
- bad input to the command: one line, exit status 2, nothing written.
"""

import collections
import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from nce_tf import models, stats
from nce_tf.analysis import known_answer, sensitivity_report
from nce_tf.analysis.sensitivity import ProbeConfig, _SubnetRunner, probe
from nce_tf.search import SuperNet
from nce_tf.sources import build_space

# Student t quantiles from a table (scipy.stats.t.ppf), independent of nce_tf.stats: 0.975 at 1, 2 and
# 4 degrees of freedom, 0.8 at 4.
T975 = {1: 12.706204736174694, 2: 4.302652729749462, 4: 2.7764451051977934}
T80_4 = 0.9409645772351816


def test_bn_reestimation_leaves_the_mean_of_the_batch_statistics():
    net = SuperNet(build_space("resnet8"), mode="tas", tas_space="2x16", seed=0)
    rng = np.random.default_rng(0)
    images = [rng.normal(size=(8, 32, 32, 3)).astype("float32") for _ in range(3)]
    widths = net.space.default_widths()
    widths[0] = 24  # the stem at 1.5x: candidate 11 of the 2x16 table
    sample = net.subnet_sample(widths)
    j = int(sample[1].numpy()[0, 0])
    stem = net.get_layer("stem_conv")
    before = stem.moving_mean.numpy().copy()
    _SubnetRunner(net).reestimate_bn(sample, images)
    kernel = stem.kernel.numpy()[:, :, :3, :24]
    ys = [tf.nn.conv2d(x, kernel, 1, "SAME").numpy().reshape(-1, 24) for x in images]
    np.testing.assert_allclose(stem.moving_mean.numpy()[j, :24], np.mean([y.mean(0) for y in ys], 0), atol=1e-5)
    n = ys[0].shape[0]
    unbiased = np.mean([y.var(0) * n / (n - 1) for y in ys], 0)
    np.testing.assert_allclose(stem.moving_variance.numpy()[j, :24], unbiased, rtol=1e-4)
    others = [k for k in range(16) if k != j]
    np.testing.assert_array_equal(stem.moving_mean.numpy()[others], before[others])  # candidates not in the sub-net
    assert stem.momentum == 0.9  # restored after tracing with momentum 0


@pytest.mark.heavy
@pytest.mark.slow  # 66 s in the suite (.ci/run runs it with --slow)
def test_the_probe_ranks_a_bottleneck_first(tmp_path):
    # The constructed network of nce_tf/analysis/known_answer.py: retraining says widening its 2-channel
    # neck helps (-0.20 nats at 4 channels) and narrowing it hurts (+0.16 at 1), more than any other layer.
    source = known_answer.source()
    model, _ = known_answer.train_neck(2, 0, source)
    path = str(tmp_path / "neck.keras")
    model.save(path)
    out = probe(model, "keras:" + path, models.QuantPolicy(), source,
                ProbeConfig(ratios=(0.5, 2.0), epochs=3, lr=0.05, bn_batches=4), verbose=False)
    by = {(c["layer"], c["ratio"]): c for c in out["changes"]}
    assert sorted(by) == [(layer, r) for layer in ("c2", "c4", "neck") for r in (0.5, 2.0)]  # c1 reads the image: pinned
    assert by[("neck", 0.5)]["width"] == 1 and by[("neck", 2.0)]["width"] == 4 and by[("c2", 2.0)]["width"] == 64
    # The bottleneck halved (2 -> 1 channel) costs the most cross-entropy, by a margin (measured: +0.24 to
    # +0.38 against at most +0.19 elsewhere, in four runs of this set-up).
    worst = sorted(out["changes"], key=lambda c: -c["delta_ce"])
    assert worst[0]["layer"] == "neck" and worst[0]["ratio"] == 0.5
    assert worst[0]["delta_ce"] > worst[1]["delta_ce"] + 0.05
    # Its widening (2 -> 4) is the one widening that gains, first by a margin (measured at seeds 0-2: -0.037,
    # -0.062, -0.052 against +0.005 to +0.022 for c2 and c4 at 2x). Before the new channels started live
    # behind the ReLU (nce_tf.adapter.from_trained, rule 3) it read +0.005, -0.007, +0.007: no gain at all.
    wider = sorted((c for c in out["changes"] if c["ratio"] == 2.0), key=lambda c: c["delta_ce"])
    assert wider[0]["layer"] == "neck" and wider[0]["delta_ce"] < -0.01
    assert wider[0]["delta_ce"] < wider[1]["delta_ce"] - 0.02
    # The paired counts are the accuracy change: (n01 - n10) / N.
    for c in out["changes"]:
        assert c["delta_accuracy"] == pytest.approx((c["n01"] - c["n10"]) / out["n_test"], abs=1e-12)
    assert out["n_test"] == 512


def test_the_report_gives_t_intervals_and_the_welch_comparison():
    def p(label, values):
        return {"label": label, "run": label, "reference": {"accuracy": 0.5, "ce": 1.0},
                "changes": [{"layer": "c", "n": 16, "width": 8, "ratio": 0.5, "delta_accuracy": v, "delta_ce": -v}
                            for v in values]}

    low, high = [-0.05, -0.03, -0.04], [-0.01, -0.02, 0.0]
    probes = [p("W2A2", [v]) for v in low] + [p("W32A32", [v]) for v in high]
    rows = sensitivity_report.summarize(probes, ["W2A2", "W32A32"])
    g = rows[0]["groups"]["W2A2"]
    # mean -0.04, sd 0.01, t_{0.975, 2} = 4.3027: half-width 4.3027 * 0.01 / sqrt(3) = 0.024841
    assert g["mean"] == pytest.approx(-0.04) and g["high"] - g["mean"] == pytest.approx(0.024841, abs=1e-6)
    c = rows[0]["comparison"]
    assert c["difference"] == pytest.approx(-0.03) and c["test"] == "permutation"
    assert c["p"] == pytest.approx(0.1)  # 3 vs 3, fully separated: 2 of 20 relabelings, the smallest p possible
    assert (c["low"], c["high"]) == pytest.approx(stats.welch_interval(low, high)[1:])
    text = sensitivity_report.markdown(rows, ["W2A2", "W32A32"])
    assert "| c (16) | 8 (0.5x) | -4.00 [-6.48, -1.52], 3 |" in text


def test_a_probe_made_before_the_clip_existed_is_still_recognised():
    # The committed probes' keys (made before global_clipnorm): the same settings give the same key.
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(repo, "results", "premise_probe", "probes", "w2a2_s1.json"), encoding="utf-8") as f:
        committed = json.load(f)["key"]["config"]
    config = ProbeConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in committed.items()})
    assert json.loads(json.dumps(config.key())) == committed
    assert ProbeConfig(global_clipnorm=1.0).key()["global_clipnorm"] == 1.0  # a clipped probe is another


def test_the_probe_clips_its_weight_steps_when_asked():
    # SGD with momentum 0.9, first step: dw = -lr g, g scaled to the clip's norm when longer.
    from nce_tf.analysis.sensitivity import train_supernet
    from nce_tf.data.info import DatasetInfo

    rng = np.random.default_rng(4)
    x, y = rng.integers(0, 256, size=(8, 32, 32, 3)).astype("uint8"), rng.integers(0, 10, 8).astype("int64")
    train = tf.data.Dataset.from_tensor_slices((x, y))
    info = DatasetInfo(name="tiny", image_shape=(32, 32, 3), num_classes=10, num_train=8, num_test=0,
                       mean=(127.0,) * 3, std=(64.0,) * 3, kind="cifar")
    moved = {}
    for clip in (0.0, 1e-3):
        net = SuperNet(build_space("resnet8"), mode="tas", tas_space="2x16", seed=0)
        before = [w.numpy().copy() for w in net.weight_variables]
        config = ProbeConfig(epochs=1, batch_size=8, lr=0.1, global_clipnorm=clip)
        train_supernet(net, train, info, config, [[] for _ in net.space.default_widths()], verbose=False)
        moved[clip] = np.sqrt(sum(np.sum((w.numpy().astype(np.float64) - b) ** 2)
                                  for w, b in zip(net.weight_variables, before)))
    assert moved[1e-3] == pytest.approx(0.1 * 1e-3, rel=1e-3)
    assert moved[0.0] > 100 * moved[1e-3]  # unclipped, the same step is the gradient's own length


@pytest.mark.parametrize("args, needle", [
    (["--probe_ratios=2.5"], "Invalid probe ratio. Received: ratio=2.5"),
    (["--probe_ratios=0.6"], "Invalid probe ratio. Received: ratio=0.6"),
    (["--probe_epochs=-1"], "Invalid epochs. Received: epochs=-1"),
    (["--probe_global_clipnorm=-1"], "Invalid global_clipnorm. Received: global_clipnorm=-1.0"),
])
def test_bad_probe_settings_are_one_line_errors_and_write_nothing(tmp_path, args, needle):
    run = tmp_path / "run"
    run.mkdir()
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "nce_tf", "analyze", "sensitivity", f"--runs={run}", f"--out={out}",
                           *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr
    assert not out.exists() and os.listdir(run) == []


@pytest.mark.parametrize("args, needle", [
    (["--ground_truth_ratios=2.5"], "Invalid ground_truth_ratios. Received: '2.5'"),
    (["--ground_truth_labels=W4A4"], "Invalid ground_truth_labels. Received: ['W4A4']"),
])
def test_bad_ground_truth_settings_fail_before_any_probe(tmp_path, args, needle):
    runs = []
    for bits in (2, 32):  # two finished-looking runs (their model files are never read)
        run = tmp_path / f"w{bits}"
        run.mkdir()
        (run / "model.keras").write_bytes(b"")
        (run / "metrics.json").write_text("{}")
        (run / "config.json").write_text(f'{{"w_bits": {bits}, "a_bits": {bits}, "resolved_model": "resnet8"}}')
        runs.append(str(run))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "nce_tf", "analyze", "sensitivity", f"--runs={','.join(runs)}",
                           f"--out={out}", "--ground_truth_rows=stem_conv", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert not out.exists()


def test_ground_truth_trains_each_change_with_the_runs_recipe_and_ranks_against_the_probe(tmp_path):
    from nce_tf.analysis import ground_truth

    settings = {"dataset": "synthetic", "epochs": 7, "lr": 0.01, "w_bits": 2, "a_bits": 2, "seed": 0,
                "init_from": "runs/w32a32_s0", "pact_init": "stats", "resolved_model": "resnet8"}
    calls = []
    # A stand-in for run_training: accuracy falls with the narrowed layer's missing channels.
    base = [16, 16, 16, 32, 32, 64, 64]

    def fake_train(config, arch):
        calls.append((config, arch))
        lost = sum(b - w for b, w in zip(base, arch.widths) if w < b)
        return {"test_accuracy": 0.6 - 0.001 * lost + 0.01 * (config.seed - 100)}

    names = ["stem_conv", "s1_b0_a_conv", "s1_b0_b_conv", "s2_b0_a_conv", "s2_b0_b_conv", "s3_b0_a_conv",
             "s3_b0_b_conv"]
    results = ground_truth.run(settings, "resnet8", names, base, ["stem_conv", "s3_b0_a_conv"], (0.5, 1.5),
                               [100, 101], str(tmp_path), fake_train, verbose=False)
    assert len(calls) == 2 * 5  # the original and 4 changes, 2 seeds each
    config, arch = calls[0]
    assert (config.epochs, config.lr, config.w_bits, config.init_from, config.pact_init) == \
        (7, 0.01, 2, "runs/w32a32_s0", "stats")  # the run's recipe
    assert config.seed == 100 and config.workdir == str(tmp_path / "original_1.0_s100") and arch.widths == base
    assert [a.widths[5] for c, a in calls if c.workdir.endswith("s3_b0_a_conv_0.5_s101")] == [32]
    d = ground_truth.deltas(results)
    # Seed-matched: the seed's offset cancels; narrowing s3_b0_a loses 32 channels = -0.032.
    assert d[("s3_b0_a_conv", 0.5)] == pytest.approx([-0.032, -0.032])
    assert d[("stem_conv", 1.5)] == pytest.approx([0.0, 0.0])
    one_shot = {("stem_conv", 0.5): -0.01, ("stem_conv", 1.5): 0.002, ("s3_b0_a_conv", 0.5): -0.05,
                ("s3_b0_a_conv", 1.5): 0.001}
    found = ground_truth.agreement(one_shot, d)
    # Retrained: s3 0.5 (-0.032) < stem 0.5 (-0.008) < the two widenings (0, 0: tied). The probe's order
    # agrees on every untied pair: tau-b = 5 / sqrt(6 * 5).
    assert found["kendall_tau"] == pytest.approx(5 / np.sqrt(30))
    # Of the 24 pairings of the retrained values (two tied zeros) with the probe's order, 2 put them in
    # ascending order (the zeros swapped) and 2 in descending: p = 4 / 24.
    assert found["p"] == pytest.approx(4 / 24)
    text = "\n".join(ground_truth.markdown("W2A2", found, d))
    assert "| s3_b0_a_conv | 0.5x | -5.00 | -3.20, -3.20 | -3.20 |" in text
    assert "over 4 changes: +0.91, exact permutation p = 0.167" in text


def test_the_overall_row_averages_each_network_over_layers_first():
    def p(label, a, b):
        return {"label": label, "run": label, "reference": {"accuracy": 0.5, "ce": 1.0},
                "changes": [{"layer": "x", "n": 16, "width": 8, "ratio": 0.5, "delta_accuracy": a, "delta_ce": 0},
                            {"layer": "y", "n": 32, "width": 16, "ratio": 0.5, "delta_accuracy": b, "delta_ce": 0}]}

    probes = [p("W2A2", -0.04, -0.02), p("W2A2", -0.06, -0.04), p("W32A32", -0.01, 0.01), p("W32A32", -0.03, 0.01)]
    row = sensitivity_report.overall(probes, ["W2A2", "W32A32"])[0]
    assert row["groups"]["W2A2"]["values"] == pytest.approx([-0.03, -0.05])
    assert row["groups"]["W32A32"]["values"] == pytest.approx([0.0, -0.01])
    assert row["comparison"]["difference"] == pytest.approx(-0.035)
    assert "| mean over layers | 0.5x | -4.00 [" in sensitivity_report.markdown([row], ["W2A2", "W32A32"])


def test_the_report_draws_a_layer_whose_networks_agree_exactly(tmp_path, figure_data):
    # Two networks with the same change: no spread, and the mean rounded to 10 decimals lies 5e-17 below
    # its interval (0.1 + 0.2 in binary); the figure used to refuse the negative error bar.
    same = 0.1 + 0.2
    probes = [{"label": label, "run": f"{label}_{i}", "reference": {"accuracy": 0.5, "ce": 1.0},
               "changes": [{"layer": "c", "n": 16, "width": 8, "ratio": 0.5, "delta_accuracy": v, "delta_ce": v}]}
              for label, values in (("W2A2", [same, same]), ("W32A32", [0.1, 0.2])) for i, v in enumerate(values)]
    rows = sensitivity_report.summarize(probes, ["W2A2", "W32A32"])
    g = rows[0]["groups"]["W2A2"]
    assert g["mean"] < g["low"] == g["high"] == same  # the case, as the record holds it
    sensitivity_report.write(probes, ["W2A2", "W32A32"], str(tmp_path))
    # W2A2 is drawn as a point with a bar of length 0, W32A32 with its t interval (1 degree of freedom).
    (ax,) = figure_data["sensitivity.png"]
    points = [(x, y) for marker, xs, ys in ax["lines"] if marker == "o" for x, y in zip(xs, ys)]
    np.testing.assert_allclose(points, [(-0.125, 100 * same), (0.125, 100 * 0.15)], rtol=1e-12)
    half = 100 * T975[1] * np.std([0.1, 0.2], ddof=1) / np.sqrt(2)
    bars = [(s[0, 0], s[0, 1], s[1, 1]) for s in ax["segments"]]
    np.testing.assert_allclose(bars, [(-0.125, 100 * same, 100 * same), (0.125, 15 - half, 15 + half)], rtol=1e-12)


LABELS = ["W2A2", "W32A32"]
LAYERS = [("stem_conv", 16), ("s1_conv", 32), ("neck", 4)]  # neck: probed at W2A2 only


def _report_probes():
    """Three networks a precision, per (layer, ratio) and precision values ``m + s * (-1, 0, 1)``: the
    spread ``s`` is the same at both precisions, so Welch's degrees of freedom are exactly 4."""
    rng = np.random.default_rng(3)
    probes = [{"label": label, "run": f"{label}_s{i}",
               "reference": {"accuracy": float(rng.uniform(0.4, 0.8)), "ce": float(rng.uniform(0.5, 2.0))},
               "changes": []} for label in LABELS for i in range(3)]
    for layer, n in LAYERS:
        for ratio in (0.5, 1.5):
            spread = {m: rng.uniform(0.002, 0.02) for m in ("delta_accuracy", "delta_ce")}
            for label in LABELS[:1] if layer == "neck" else LABELS:
                mean = {m: rng.uniform(-0.08, 0.02) for m in spread}
                for i, p in enumerate(q for q in probes if q["label"] == label):
                    p["changes"].append({"layer": layer, "n": n, "width": int(n * ratio), "ratio": ratio,
                                         **{m: float(mean[m] + spread[m] * (i - 1)) for m in spread}})
    return probes


def _values(probes, metric):
    """``{(layer, ratio): {label: [per-network values]}}``, the overall rows under ``("mean over layers", ratio)``:
    each network's mean over the layers it probed."""
    out = collections.defaultdict(lambda: collections.defaultdict(list))
    for p in probes:
        per_ratio = collections.defaultdict(list)
        for c in p["changes"]:
            out[(c["layer"], c["ratio"])][p["label"]].append(c[metric])
            per_ratio[c["ratio"]].append(c[metric])
        for ratio, v in per_ratio.items():
            out[("mean over layers", ratio)][p["label"]].append(float(np.mean(v)))
    return out


def _group(v):
    """``(mean, low, high)``: a t interval over 3 networks (2 degrees of freedom)."""
    half = T975[2] * np.std(v, ddof=1) / np.sqrt(3)
    return np.mean(v), np.mean(v) - half, np.mean(v) + half


def _permutation_p(a, b):
    """Two-sided exact p of the difference of means: the share of the 20 relabelings at least as far apart."""
    x = np.array(a + b)
    observed = abs(np.mean(a) - np.mean(b))
    far = [abs(x[list(i)].mean() - np.delete(x, list(i)).mean()) >= observed - 1e-12
           for i in itertools.combinations(range(6), 3)]
    return sum(far) / len(far)


def _welch(a, b):
    """``(difference, low, high, smallest detectable)`` for equal spreads: 4 degrees of freedom."""
    se = np.sqrt(np.var(a, ddof=1) / 3 + np.var(b, ddof=1) / 3)
    d = np.mean(a) - np.mean(b)
    return d, d - T975[4] * se, d + T975[4] * se, (T975[4] + T80_4) * se


def _pct(x):
    return f"{100 * x:+.2f}"


def _table(text, title):
    """The cells of each row of the Markdown table under ``## title``."""
    lines = text.split(f"## {title}\n\n", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def test_the_report_files_show_the_probes_statistics(tmp_path, figure_data):
    # Every number of sensitivity.json, .md and .png worked out here from the probes' own records.
    probes = _report_probes()
    sensitivity_report.write(probes, LABELS, str(tmp_path))
    with open(tmp_path / "sensitivity.json", encoding="utf-8") as f:
        record = json.load(f)
    with open(tmp_path / "sensitivity.md", encoding="utf-8") as f:
        text = f.read()
    assert record["probes"] == probes and record["labels"] == LABELS
    for p in probes:
        assert (f"- {p['label']} `{p['run']}`: reference (1X, BN re-estimated) accuracy "
                f"{100 * p['reference']['accuracy']:.2f}%, CE {p['reference']['ce']:.3f}\n") in text

    for metric, key, title in (("delta_accuracy", "delta_accuracy", "Test accuracy"),
                               ("delta_ce", "delta_ce", "Cross-entropy"),
                               ("delta_accuracy", "overall", "Mean over layers (test accuracy)")):
        values = _values(probes, metric)
        overall = key == "overall"
        expected = [k for k in values if (k[0] == "mean over layers") == overall]
        rows, cells = record["summary"][key], _table(text, title)
        assert [(r["layer"], r["ratio"]) for r in rows] == expected and len(cells) == len(expected)
        for row, line, (layer, ratio) in zip(rows, cells, expected):
            n = dict(LAYERS).get(layer)
            assert line[:2] == ([layer, f"{ratio}x"] if overall else [f"{layer} ({n})", f"{int(n * ratio)} ({ratio}x)"])
            for k, label in enumerate(LABELS):
                v = values[(layer, ratio)].get(label)
                if v is None:  # neck at W32A32
                    assert label not in row["groups"] and line[2 + k] == "-"
                    continue
                mean, low, high = _group(v)
                g = row["groups"][label]
                # The record rounds the mean to 10 decimals.
                assert (g["mean"], g["low"], g["high"]) == pytest.approx((mean, low, high), abs=1e-10)
                assert g["values"] == pytest.approx(v, abs=1e-15) and g["n"] == 3
                assert line[2 + k] == f"{_pct(mean)} [{_pct(low)}, {_pct(high)}], 3"
            if layer == "neck":
                assert "comparison" not in row and line[4:] == ["-", "-", "-"]
                continue
            a, b = values[(layer, ratio)][LABELS[0]], values[(layer, ratio)][LABELS[1]]
            c, p = row["comparison"], _permutation_p(a, b)
            assert c["difference"] == pytest.approx(np.mean(a) - np.mean(b), abs=1e-12) and c["p"] == p
            assert line[5] == f"{p:.3g}"
            if not overall:  # equal spreads (the overall rows' differ: Welch's df is fractional there)
                d, low, high, mdd = _welch(a, b)
                assert (c["low"], c["high"], c["mdd"]) == pytest.approx((low, high, mdd), rel=1e-9)
                assert line[4] == f"{_pct(d)} [{_pct(low)}, {_pct(high)}]" and line[6] == f"{100 * mdd:.2f}"

    # The figure: one panel per ratio, layers in the probes' order, each precision's means (points of
    # accuracy) at its offset with its t interval as the bar.
    values = _values(probes, "delta_accuracy")
    panels = figure_data["sensitivity.png"]
    assert len(panels) == 2 and panels[-1]["xticklabels"] == [layer for layer, _ in LAYERS]
    for ax, ratio in zip(panels, (0.5, 1.5)):
        shown = [(x, y) for marker, xs, ys in ax["lines"] if marker == "o" for x, y in zip(xs, ys)]
        bars = sorted((s[0, 0], s[0, 1], s[1, 1]) for s in ax["segments"])
        want = [(i + (k - 0.5) * 0.25, [100 * e for e in _group(values[(layer, ratio)][label])])
                for k, label in enumerate(LABELS) for i, (layer, _) in enumerate(LAYERS)
                if label in values[(layer, ratio)]]
        # Points of accuracy: the record's mean rounded to 10 decimals, 1e-8 here.
        np.testing.assert_allclose(shown, [(x, mean) for x, (mean, _, _) in want], rtol=0, atol=1e-8)
        np.testing.assert_allclose(bars, sorted((x, low, high) for x, (_, low, high) in want), rtol=0, atol=1e-8)
