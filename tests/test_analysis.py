"""Tests of the numbers behind the analyses, on tiny cases worked out by hand."""

import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from nce_tf import arch as arch_lib
from nce_tf.analysis import channels, metrics, stdev
from nce_tf.layers import QuantActivation
from nce_tf.quant import PACT

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_sqnr_of_a_known_signal():
    x = np.array([3.0, -4.0])  # power 25
    assert metrics.sqnr_db(x, x + np.array([0.3, 0.4])) == pytest.approx(10 * math.log10(25 / 0.25))
    assert metrics.sqnr_db(x, x) == float("inf")


def test_kendall_tau_from_its_definition():
    assert metrics.kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert metrics.kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # pairs of (1,2,3) vs (1,3,2): (1,2)+ (1,3)+ (2,3)-  -> (2 - 1) / 3
    assert metrics.kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)


def test_preference_score_of_a_known_gradient_order():
    grads = np.array([[0.3, 0.2, 0.1, -0.4],    # more channels, more negative gradient: tau = +1
                      [0.3, 0.2, -0.4, 0.1]])   # one swap at the top: tau = 4/6
    assert metrics.preference_score(grads) == pytest.approx((1 + 4 / 6) / 2)


def test_activation_stats_by_hand():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, QuantActivation(PACT(bits=2, alpha_init=3.0), name="act")(inputs))
    x = np.array([[-1.0, 0.4, 1.2, 2.6], [4.0, 0.9, 2.0, 0.1]], "float32")
    # PACT levels {0, 1, 2, 3}: outputs by rounding the clipped input.
    q = np.array([[0.0, 0.0, 1.0, 3.0], [3.0, 1.0, 2.0, 0.0]])
    relu = np.maximum(x, 0)
    stats = stdev.activation_stats(model, x)["act"]
    assert stats["std"] == pytest.approx(q.std(), rel=1e-6)
    assert stats["sqnr_db"] == pytest.approx(10 * math.log10((relu**2).sum() / ((relu - q) ** 2).sum()), rel=1e-6)


def _two_site_net(activation):
    """x (6) -> Dense d1 (4) -> site a_act -> Dense d2 (3) -> site b_act, with fixed weights."""
    rng = np.random.default_rng(2)
    inputs = keras.Input((6,))
    d1, d2 = keras.layers.Dense(4, name="d1"), keras.layers.Dense(3, name="d2")
    model = keras.Model(inputs, activation("b_act")(d2(activation("a_act")(d1(inputs)))))
    d1.set_weights([rng.normal(size=(6, 4)), rng.normal(0.3, 0.2, 4)])
    d2.set_weights([rng.normal(size=(4, 3)), rng.normal(0.3, 0.2, 3)])
    return model, [w.astype(np.float64) for w in d1.get_weights() + d2.get_weights()]


def test_stdev_numbers_and_figure_by_hand(tmp_path, figure_data):
    """Fig. 1's numbers: each site's output std, and for PACT sites the SQNR of the output against the
    ReLU of the same input, worked out in numpy through both layers; the JSON, the CSV and both panels."""
    float_net, (w1, b1, w2, b2) = _two_site_net(lambda name: keras.layers.ReLU(name=name))
    pact_net, _ = _two_site_net(lambda name: QuantActivation(PACT(bits=2, alpha_init=1.5), name=name))
    x = np.random.default_rng(3).normal(size=(40, 6)).astype("float32")

    def pact(v):  # levels k * 1.5 / 3, k = 0..3
        return np.round(np.clip(v, 0, 1.5) / 0.5) * 0.5

    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    sqnr = lambda pre, out: 10 * math.log10((relu(pre) ** 2).sum() / ((relu(pre) - out) ** 2).sum())  # noqa: E731
    a_float = relu(x @ w1 + b1)
    b_float = relu(a_float @ w2 + b2)
    pre_a = x @ w1 + b1
    pre_b = pact(pre_a) @ w2 + b2
    expect = {"W32A32": {"a_act": {"std": a_float.std(), "sqnr_db": None},
                         "b_act": {"std": b_float.std(), "sqnr_db": None}},
              "W2A2": {"a_act": {"std": pact(pre_a).std(), "sqnr_db": sqnr(pre_a, pact(pre_a))},
                       "b_act": {"std": pact(pre_b).std(), "sqnr_db": sqnr(pre_b, pact(pre_b))}}}
    assert len({round(s["std"], 3) for v in expect.values() for s in v.values()}) == 4  # four different values
    out = stdev.run({"W32A32": float_net, "W2A2": pact_net}, x, str(tmp_path))
    with open(tmp_path / "stdev.json", encoding="utf-8") as f:
        written = json.load(f)
    assert written == out and written["sites"] == ["a_act", "b_act"]
    for label, sites in expect.items():
        for site, values in sites.items():
            got = written["stats"][label][site]
            assert got["std"] == pytest.approx(values["std"], rel=1e-5)
            assert got["sqnr_db"] == (None if values["sqnr_db"] is None else pytest.approx(values["sqnr_db"], rel=1e-5))
    with open(tmp_path / "stdev.csv", encoding="utf-8") as f:
        header, *rows = [line.split(",") for line in f.read().splitlines()]
    assert header == ["site", "std_W32A32", "sqnr_db_W32A32", "std_W2A2", "sqnr_db_W2A2"]
    for row, site in zip(rows, ("a_act", "b_act"), strict=True):
        assert row[0] == site and row[2] == ""
        assert [float(row[1]), float(row[3]), float(row[4])] == pytest.approx(
            [expect["W32A32"][site]["std"], expect["W2A2"][site]["std"], expect["W2A2"][site]["sqnr_db"]], rel=1e-5)
    # Top: each network's std per site; bottom: the SQNR of the network with PACT sites only.
    top, bottom = figure_data["stdev.png"]
    std_of = lambda label: [expect[label][s]["std"] for s in ("a_act", "b_act")]  # noqa: E731
    assert [(list(x), list(y)) for _, x, y in top["lines"]] == [
        ([0, 1], pytest.approx(std_of("W32A32"), rel=1e-5)), ([0, 1], pytest.approx(std_of("W2A2"), rel=1e-5))]
    assert [(list(x), list(y)) for _, x, y in bottom["lines"]] == [
        ([0, 1], pytest.approx([expect["W2A2"][s]["sqnr_db"] for s in ("a_act", "b_act")], rel=1e-5))]
    assert bottom["xticklabels"] == ["a", "b"]


def test_channels_figure_and_numbers(tmp_path, figure_data):
    widths = [12, 16, 20, 32, 48, 64, 128]
    original = [16, 16, 16, 32, 32, 64, 64]  # resnet8's 1X widths
    path = str(tmp_path / "arch.json")
    arch_lib.save_arch(path, "resnet8", widths)
    summary = channels.run(path, str(tmp_path))
    assert (summary["expanded"], summary["narrowed"]) == (3, 1)  # 20, 48, 128 above 1X; 12 below
    names = [r["layer"] for r in summary["layers"]]
    expect = [{"layer": n, "original": o, "derived": d, "ratio": d / o} for n, o, d in zip(names, original, widths)]
    assert summary["layers"] == expect and len(set(names)) == 7
    with open(tmp_path / "channels.json", encoding="utf-8") as f:
        assert json.load(f) == {"model": "resnet8", "layers": expect, "expanded": 3, "narrowed": 1}
    with open(tmp_path / "channels.csv", encoding="utf-8") as f:
        assert f.read().splitlines()[1:] == [f"{n},{o},{d},{d / o}" for n, o, d in zip(names, original, widths)]
    # The figure: a bar pair per layer, the original's left of x, the derived one's right of it.
    (ax,) = figure_data["channels.png"]
    assert ax["bars"] == [pytest.approx((i - 0.2, o)) for i, o in enumerate(original)] + [
        pytest.approx((i + 0.2, d)) for i, d in enumerate(widths)]
    assert ax["xticklabels"] == [n.removesuffix("_conv") for n in names]


def test_analyze_tool_without_a_search(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, os.path.join("tools", "analyze.py"), "channels", f"--workdir={tmp_path}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "arch.json" in proc.stderr
    assert os.listdir(tmp_path) == []


def test_kendall_scores_from_recorded_gradients(tmp_path, figure_data):
    from nce_tf.analysis import kendall

    # CE part. Layer 0: every epoch the most negative gradient is on the widest candidate (score 1);
    # layer 1: the reverse (score -1).  A second run: layer 0 with one swap (tau 4/6), layer 1 flat (0).
    # The cost part is monotone (it always wants wider: its own score is +1) and larger than the CE
    # part: the scores must not see it.
    cost = [[0.0, -1.0, -2.0, -3.0], [0.0, -1.0, -2.0, -3.0]]

    def log(path, rows):
        with open(path, "w", encoding="utf-8") as f:
            for epoch in range(3):
                f.write(json.dumps({"epoch": epoch + 1, "alpha_grad_ce": rows, "alpha_grad_cost": cost}) + "\n")
        return str(path)

    quant = log(tmp_path / "q.jsonl", [[0.3, 0.2, 0.1, -0.4], [-0.4, 0.1, 0.2, 0.3]])
    flt = log(tmp_path / "f.jsonl", [[0.3, 0.2, -0.4, 0.1], [0.0, 0.0, 0.0, 0.0]])
    summary = kendall.run({"W2A2": quant, "W32A32": flt}, str(tmp_path))
    assert summary["scores"]["W2A2"] == pytest.approx([1.0, -1.0])
    assert summary["scores"]["W32A32"] == pytest.approx([4 / 6, 0.0])
    assert summary["cost_scores"]["W2A2"] == pytest.approx([1.0, 1.0])
    with open(tmp_path / "kendall.json", encoding="utf-8") as f:
        written = json.load(f)
    assert written["scores"] == summary["scores"] and written["cost_scores"] == summary["cost_scores"]
    with open(tmp_path / "kendall.csv", encoding="utf-8") as f:
        rows = [line.split(",") for line in f.read().splitlines()[1:]]
    assert [float(r[1]) for r in rows] == pytest.approx([1.0, -1.0])  # W2A2's score column
    assert [float(r[4]) for r in rows] == pytest.approx([4 / 6, 0.0])  # W32A32's
    # The figure. Top: layer 1 (of 2) of the first group's log, a line per candidate over the 3 epochs
    # at its recorded gradient; bottom: each group's score per layer, the hand values above.
    top, bottom = figure_data["kendall.png"]
    assert [list(y) for _, _, y in top["lines"]] == [[g] * 3 for g in (-0.4, 0.1, 0.2, 0.3)]
    points = [(list(x), list(y)) for marker, x, y in bottom["lines"] if marker == "o"]
    assert points == [([0, 1], pytest.approx([1.0, -1.0])), ([0, 1], pytest.approx([4 / 6, 0.0]))]


def test_tradeoff_rows_and_figure(tmp_path, figure_data):
    from nce_tf.analysis import tradeoff

    runs = [("nce", 1.0, {"test_accuracy": 0.9, "macs": 40_000_000, "params": 270_000}),
            ("wrpn", 1.0, {"test_accuracy": 0.88, "macs": 40_800_000, "params": 272_000}),
            ("nce", 0.5, {"test_accuracy": 0.85, "macs": 20_000_000, "params": 150_000})]
    rows = tradeoff.run(runs, str(tmp_path))
    assert [(r["method"], r["budget"], r["macs"]) for r in rows] == [("nce", 1.0, 40_000_000),
                                                                     ("wrpn", 1.0, 40_800_000),
                                                                     ("nce", 0.5, 20_000_000)]
    with open(tmp_path / "tradeoff.csv", encoding="utf-8") as f:
        assert f.read().splitlines() == ["method,budget,test_accuracy,macs,params", "nce,1.0,0.9,40000000,270000",
                                         "wrpn,1.0,0.88,40800000,272000", "nce,0.5,0.85,20000000,150000"]
    with open(tmp_path / "tradeoff.json", encoding="utf-8") as f:
        assert json.load(f) == [{"method": m, "budget": b, **r} for m, b, r in runs]
    # The figure: per method a line ordered by cost, MACs in M (top) and PARAMs in K (bottom) against
    # accuracy in %; nce's two runs reordered (its 0.5 budget is the cheaper).
    macs, params = figure_data["tradeoff.png"]
    assert [(list(x), list(y)) for _, x, y in macs["lines"]] == [
        ([20.0, 40.0], pytest.approx([85.0, 90.0])), ([40.8], pytest.approx([88.0]))]
    assert [(list(x), list(y)) for _, x, y in params["lines"]] == [
        ([150.0, 270.0], pytest.approx([85.0, 90.0])), ([272.0], pytest.approx([88.0]))]


@pytest.mark.parametrize("grid", ["recorded", "warm-up", "from the original widths", "none"])
def test_search_summary_counts_what_the_first_search_epoch_expanded(tmp_path, grid):
    """The log's first search record is written after that epoch's expansions (row 1 there): the rows'
    initial counts come from arch.json's grid, else an older log's warm-up record, else the candidates
    up to the original width; without any of them, from that first record, which misses row 1."""
    import nce_tf
    from nce_tf.analysis import searches

    widths = nce_tf.models.default_widths("resnet8")
    width_grid = {"recorded": {"width_ratios": "nce", "initial_candidates": [8] * 7},
                  "warm-up": None,
                  "from the original widths": {"width_ratios": "nce",
                                               "candidates": [[j * n // 8 for j in range(1, 17)] for n in widths]},
                  "none": None}[grid]
    extra = {"width_grid": width_grid} if width_grid else {}
    nce_tf.arch.save_arch(str(tmp_path / "arch.json"), "resnet8", widths, w_bits=2, a_bits=2, seed=0,
                          original_widths=widths, num_candidates=[8, 9, 8, 8, 9, 8, 8], **extra)
    log = [{"phase": phase, "num_candidates": k, "probs": [[1 / kk] * kk for kk in k]}
           for phase, k in [("warmup", [8] * 7), ("search", [8, 9, 8, 8, 8, 8, 8]), ("search", [8, 9, 8, 8, 9, 8, 8])]
           if phase == "search" or grid == "warm-up"]
    with open(tmp_path / "search_log.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in log)
    names = nce_tf.models.width_names("resnet8")
    expected = [(names[4], 1)] if grid == "none" else [(names[1], 1), (names[4], 1)]
    summary = searches.summarize(str(tmp_path))
    assert summary["expanded"] == expected
    assert summary["pair_merge"] == "cwi"  # a search that recorded no merge interpolated (the only one then)


def test_search_summary_reads_expansion_ratios_and_ce_scores(tmp_path):
    import nce_tf
    from nce_tf.analysis import searches

    widths = nce_tf.models.default_widths("resnet8")
    nce_tf.arch.save_arch(str(tmp_path / "arch.json"), "resnet8", widths, w_bits=2, a_bits=2, seed=3,
                          macs_ratio=1.01, params_ratio=0.9, num_candidates=[8, 10, 8, 8, 9, 8, 8],
                          final_probs=[[0.5, 0.5]] * 7, search={"mode": "nce", "pair_merge": "pad"})
    k0, k1 = [8] * 7, [8, 10, 8, 8, 9, 8, 8]
    ce_wide, ce_narrow = [0.2, 0.1, 0.0, -0.3], [-0.3, 0.0, 0.1, 0.2]
    ce_wider = [0.4, 0.1, 0.0, -0.4]  # the same order, a larger narrowest-minus-widest gap (0.8 against 0.5)
    # The instruments: 3 arch steps with the MACs pushed down in 1, then 1 step pushed down; per row the
    # cost part's norm 2 then 6 against the CE's 1 and 1: (2*3 + 6*1) / (1*3 + 1*1) = 3 (row 0: 0.5 / 1 x ...).
    log = [{"phase": "warmup", "num_candidates": k0, "probs": [[1 / 8] * 8] * 7, "elapsed_seconds": 5,
            "subnet_1x_accuracy": 0.5},
           {"epoch": 2, "expanded_rows": [], "phase": "search", "num_candidates": k0, "probs": [[0.1] * 7 + [0.3]] * 7,
            "alpha_grad_ce": [ce_wide] * 6 + [ce_narrow], "alpha_grad_cost": [[0, -1, -2, -3]] * 7,
            "alpha_grad_steps": 3, "cost_active": {"macs": {"down": 1 / 3, "up": 0.0}},
            "alpha_grad_norm_ce": [1.0] * 7, "alpha_grad_norm_cost": [0.5] + [2.0] * 6, "subnet_1x_accuracy": 0.6},
           {"epoch": 3, "expanded_rows": [4, 1], "phase": "search", "num_candidates": k1,
            "probs": [[0.05] * (k - 1) + [0.35] for k in k1],
            "alpha_grad_ce": [ce_wider] * 6 + [ce_narrow], "elapsed_seconds": 120, "arch_accuracy": 0.55,
            "alpha_grad_steps": 1, "cost_active": {"macs": {"down": 1.0, "up": 0.0}},
            "alpha_grad_norm_ce": [1.0] * 7, "alpha_grad_norm_cost": [0.5] + [6.0] * 6, "subnet_1x_accuracy": 0.7}]
    with open(tmp_path / "search_log.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in log)
    s = searches.summarize(str(tmp_path))
    names = nce_tf.models.width_names("resnet8")
    assert s["expanded"] == [(names[1], 2), (names[4], 1)] and s["layers_expanded"] == 2
    assert s["kendall_ce"] == pytest.approx([1.0] * 6 + [-1.0]) and s["kendall_ce_mean"] == pytest.approx(5 / 7)
    assert s["max_p_widest"] == pytest.approx(0.35) and (s["macs_ratio"], s["seed"]) == (1.01, 3)
    assert (s["mode"], s["pair_merge"]) == ("nce", "pad")
    # The size measures: rows 0-5 gap 0.5 then 0.8, mean 0.65, std 0.2121, se 0.15, gap_t 4.333; row 6's
    # gap -0.5 twice never varies (no gap_t), so the mean gap_t is row 0-5's and the mean gap (6 x 0.65 - 0.5) / 7.
    assert s["kendall_gap"] == pytest.approx([0.65] * 6 + [-0.5]) and s["kendall_gap_t"][6] is None
    assert s["kendall_gap_t"][:6] == pytest.approx([0.65 / 0.15] * 6)
    assert s["kendall_gap_t_mean"] == pytest.approx(0.65 / 0.15) and s["kendall_gap_mean"] == pytest.approx(3.4 / 7)
    assert s["kendall_gap_t_rows"] == 6
    # the epoch whose check first grew each row, and arch.json's final probabilities as they are
    assert s["expanded_at"] == [None, 3, None, None, 3, None, None] and s["final_probs"] == [[0.5, 0.5]] * 7
    table = searches.markdown([s])
    assert "| W2A2 | 3 | 2: " in table and "+0.71 | 2.0 |" in table
    by_layer = searches.layer_markdown([s, {**s, "kendall_ce": [0.0] * 7, "expanded": []}]).splitlines()
    assert by_layer[3] == f"| {names[1]} | +0.50 +- 0.50, 1/2 |" and by_layer[-2] == f"| {names[6]} | -0.50 +- 0.50, 0/2 |"
    # (1/3 * 3 + 1 * 1) / 4 steps; the median row's ratio is 3 (row 0's is 0.5).
    assert s["cost_active"] == {"macs": {"down": pytest.approx(0.5), "up": 0.0}}
    assert s["grad_norm_ratio"] == pytest.approx(3.0) and s["subnet_1x_accuracy"] == [0.5, 0.7]
    assert s["subnet_1x_statistics"] == "unrecorded"  # a log from before the read-out named its statistics
    assert [(t["phase"], t.get("subnet_1x_accuracy"), t.get("arch_accuracy")) for t in s["trajectory"]] == [
        ("warmup", 0.5, None), ("search", 0.6, None), ("search", 0.7, 0.55)]
    assert "| macs 0.50 / 0.00 | 3.00 | 0.500 -> 0.700 |" in searches.drive_markdown([s])
    with pytest.raises(nce_tf.errors.UsageError, match="Not a finished search"):
        searches.summarize(str(tmp_path / "missing"))


def test_search_widths_against_the_probe_by_rank(tmp_path):
    from nce_tf.analysis import search_vs_probe
    from nce_tf.errors import UsageError

    # Four layers; the search widened l0 and l2 (1.5x, 1.25x), kept l1, narrowed l3 (0.5x).
    search = {"w_bits": 2, "a_bits": 2, "layers": ["l0", "l1", "l2", "l3"], "widths": [24, 16, 20, 8],
              "original_widths": [16, 16, 16, 16]}
    change = lambda layer, d, ratio=0.5: {"layer": layer, "ratio": ratio, "delta_ce": d}  # noqa: E731
    # Two W2A2 networks (means 0.3, 0.1, 0.2, 0.0: the search's order) and one W32A32 network whose
    # changes reverse the quantization measure's order of l0 and l2: 0.3 - 0.0, 0.1 - 0.0, 0.2 - 0.4, 0.0 - 0.0.
    sens = {"probes": [
        {"label": "W2A2", "changes": [change("l0", 0.2), change("l1", 0.1), change("l2", 0.3), change("l3", -0.1),
                                      change("l0", 9.0, ratio=1.5)]},
        {"label": "W2A2", "changes": [change("l0", 0.4), change("l1", 0.1), change("l2", 0.1), change("l3", 0.1)]},
        {"label": "W32A32", "changes": [change("l0", 0.0), change("l1", 0.0), change("l2", 0.4), change("l3", 0.0)]}]}
    out = search_vs_probe.agreement(search, sens)
    assert out["width_ratio"] == [1.5, 1.0, 1.25, 0.5] and out["own"]["values"] == pytest.approx([0.3, 0.1, 0.2, 0.0])
    assert out["own"]["tau"] == pytest.approx(1.0) and out["own"]["p"] == pytest.approx(2 / 24)  # exact, 4! pairings
    # quantization: [0.3, 0.1, -0.2, 0.0] against [1.5, 1.0, 1.25, 0.5]: the pairs (l1, l2) and (l2, l3)
    # discordant, 4 concordant: tau = 2/6.  Of the 24 pairings 6 have S = C - D = 0, so p = 18/24.
    assert out["quantization"]["values"] == pytest.approx([0.3, 0.1, -0.2, 0.0])
    assert out["quantization"]["tau"] == pytest.approx(1 / 3) and out["quantization"]["p"] == pytest.approx(0.75)
    line = search_vs_probe.markdown([("s", out)]).splitlines()[-1]
    assert line == "| s | W2A2 | 2 / 1 | +1.00 | 0.0833 | +0.33 | 0.75 |"
    with pytest.raises(UsageError, match="no W2A2 networks at ratio 0.75"):
        search_vs_probe.agreement(search, sens, ratio=0.75)
    (tmp_path / "arch.json").write_text('{"model": "resnet8"}')
    with pytest.raises(UsageError, match="no probes in it"):
        search_vs_probe.read_sensitivity(str(tmp_path / "arch.json"))
