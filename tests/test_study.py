"""nce_tf.study: the statistics against hand-computed p-values and intervals and the interval's coverage by
simulation, a study end to end, a killed study resumed, and bad input refused with one line."""

import csv
import dataclasses
import itertools
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time

import numpy as np
import pytest

from nce_tf import stats
from nce_tf.errors import UsageError
from nce_tf.results.study_summary import comparisons, markdown, same_networks, seed_ties
from nce_tf.study import StudyConfig, plan, run_study
from nce_tf.study import results as study_results

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(REPO, "tools", "study.py")
# A tiny ResNet-8 task: every search and training takes a few seconds.
TINY = dict(model="resnet8", dataset="synthetic", synthetic_train_size=64, synthetic_test_size=32, w_bits=2,
            a_bits=2, epochs=1, warmup_epochs=0, batch_size=32, steps_per_epoch=1, verbose=0)
TINY_SEARCH = dict(search_warmup_epochs=0, search_epochs=1, search_batch_size=16, search_steps_per_epoch=1,
                   arch_lr=0.01)


def _env():
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the tool must keep TensorFlow's start-up lines off by itself
    return env


def _flags(d):
    return [f"--{k}={v}" for k, v in d.items()]


# --- the statistics, checked against values worked out by hand ------------------------------------

def test_t_distribution_against_closed_forms_and_tables():
    t = np.array([-4.0, -1.0, 0.0, 0.5, 3.0])
    # df = 1 is the Cauchy: 1/2 + atan(t)/pi; df = 2 has F(t) = 1/2 + t / (2 sqrt(2 + t^2)).
    assert stats.t_cdf(t, 1) == pytest.approx(0.5 + np.arctan(t) / np.pi, abs=1e-12)
    assert stats.t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * np.sqrt(2 + t * t)), abs=1e-12)
    # Table values (two-sided 95% and the 80% one-sided quantile), and the df = 1 closed form tan(pi (p - 1/2)).
    assert stats.t_quantile(0.975, [4, 7, 10]) == pytest.approx([2.776, 2.365, 2.228], abs=5e-4)
    assert stats.t_quantile([0.8, 0.025], [4, 10]) == pytest.approx([0.941, -2.228], abs=5e-4)
    assert float(stats.t_quantile(0.975, 1)) == pytest.approx(np.tan(np.pi * 0.475), rel=1e-10)
    with pytest.raises(UsageError, match="t quantile"):
        stats.t_quantile(1.0, 3)


def test_permutation_test_against_hand_counts():
    # diff = sum_a (1/n + 1/m) - total/m, so |diff| ranks relabelings by |sum_a - n total / N|.
    # [1,2,3] vs [4,5,6]: only {1,2,3} and its mirror {4,5,6} reach |diff| = 3: 2 of C(6,3) = 20.
    assert stats.permutation_test([1, 2, 3], [4, 5, 6]) == dict(p=0.1, p_min=0.1, exact=True, relabelings=20, seed=None)
    # [1,2,4] vs [3,5,6]: |diff| >= 7/3 <=> sum_a <= 7 or >= 14: {1,2,3}, {1,2,4}, {3,5,6}, {4,5,6}: 4 / 20.
    assert stats.permutation_test([1, 2, 4], [3, 5, 6])["p"] == pytest.approx(0.2)
    # [5,6] vs [1,2,3]: |diff| >= 3.5 <=> |5 sum_a - 34| >= 21 <=> sum_a >= 11 (only {5,6}) or <= 2.6 (none):
    # 1 of C(5,2) = 10; the other tail holds nothing, so two-sided is not "double the one-sided".
    assert stats.permutation_test([5, 6], [1, 2, 3])["p"] == pytest.approx(0.1)
    # One unit against four: |diff| is proportional to |x_k - 3.2|: 0 (3.2) and 10 (6.8) are as extreme as 0: 2 / 5;
    # the smallest p of 1 vs n is 1 / (n + 1).
    one = stats.permutation_test([0], [1, 2, 3, 10])
    assert (one["p"], one["p_min"]) == pytest.approx((0.4, 0.2))
    # Past the enumeration limit: a seeded Monte Carlo that agrees with the exact count.
    a, b = np.random.default_rng(3).normal(size=(2, 6)) + [[0.8], [0.0]]
    exact = stats.permutation_test(a, b)
    drawn = stats.permutation_test(a, b, max_enumerations=100, resamples=40_000, seed=1)
    assert exact["relabelings"] == 924 and not drawn["exact"] and drawn["relabelings"] == 40_000
    assert drawn["p"] == pytest.approx(exact["p"], abs=0.01)


def test_sign_flip_test_against_hand_counts():
    # d = [1, 2, 3, -0.5]: the sum under a flip set F is 5.5 - 2 sum(F) over |d| = {1, 2, 3, 0.5} (total 6.5);
    # |6.5 - 2 F| >= 5.5 <=> F <= 0.5 ({}, {0.5}) or F >= 6 ({1,2,3}, all): 4 of 16.
    assert stats.sign_flip_test([1, 2, 3, -0.5])["p"] == pytest.approx(0.25)
    # Five differences of one sign: all-plus and all-minus, 2 of 32 = 0.0625 (the "5 of 5": never < 0.05).
    five = stats.sign_flip_test([0.01, 0.02, 0.01, 0.03, 0.02])
    assert (five["p"], five["p_min"]) == pytest.approx((0.0625, 0.0625))


def test_welch_interval_and_detectable_difference_by_hand():
    # [1,2,3] vs [4,5,6]: variances 1, SE = sqrt(1/3 + 1/3), nu = (2/3)^2 / (2 (1/3)^2 / 2) = 4, t_{.975,4} = 2.7764.
    se = np.sqrt(2 / 3)
    assert stats.welch_interval([1, 2, 3], [4, 5, 6]) == pytest.approx((-3, -3 - 2.7764 * se, -3 + 2.7764 * se),
                                                                       abs=1e-4)
    # MDD at 80% power: (t_{.975,4} + t_{.8,4}) SE = (2.7764 + 0.9410) * 0.8165.
    assert stats.min_detectable_difference(se, 4) == pytest.approx((2.7764 + 0.9410) * se, abs=1e-3)
    # Unequal sizes and spreads, [1,3] vs [2,4,6,8]: means 2 and 5, v_a = 2/2 = 1, v_b = (20/3)/4 = 5/3,
    # nu = (8/3)^2 / (1/1 + (5/3)^2/3) = (64/9) / (52/27) = 48/13.
    assert stats.welch(stats.side([1, 3]), stats.side([2, 4, 6, 8])) == pytest.approx((-3, np.sqrt(8 / 3), 48 / 13))


def test_compare_single_structures_use_their_trainings():
    # Two single structures trained twice each: v = var([1,3])/2 = 1 a side, nu = (1+1)^2 / (1 + 1) = 2,
    # t = -3/sqrt(2); for df = 2 the two-sided tail is 1 - |t| / sqrt(2 + t^2) = 1 - 2.1213/2.5495 = 0.16795.
    c = stats.compare([2.0], [5.0], replicates_a=[1, 3], replicates_b=[4, 6])
    assert (c["test"], c["units"], c["replicates"], c["df"]) == ("welch_t", [1, 1], [2, 2], pytest.approx(2.0))
    assert c["p"] == pytest.approx(1 - 3 / np.sqrt(2) / np.sqrt(6.5)) and c["resolved"] is False
    assert (c["low"], c["high"]) == pytest.approx((-3 - 4.3027 * np.sqrt(2), -3 + 4.3027 * np.sqrt(2)), abs=1e-3)
    # Without two trainings of the single structure its accuracy's error is unknown: nothing is tested.
    none = stats.compare([0.6, 0.62, 0.64], [0.6], replicates_b=[0.6])
    assert none["test"] is None and none["p"] is None and none["low"] is None and none["resolved"] is None
    # Several structures a side: the permutation test decides; its p is the hand count above.
    perm = stats.compare([1, 2, 3], [4, 5, 6])
    assert (perm["test"], perm["p"], perm["exact"], perm["resolved"]) == ("permutation", 0.1, True, False)


def test_welch_interval_covers_at_small_n():
    """Coverage of the 95% Welch t interval on normal data, 4000 simulated studies per case (Monte
    Carlo error 0.35 points): n = 5 and n = 8 per group, equal spreads and spreads 1 : 2.

    Measured: 95.4% (n = 5) and 95.3% (n = 8) with equal spreads, 94.6% and 94.7% with spreads 1 : 2.
    The percentile bootstrap it replaces (nce_tf/study/bootstrap.py, 2000 studies x 2000 resamples)
    covered 83.0% at n = 5 and 89.8% at n = 8 for paired differences (one sample), 88.4% and 90.8% for
    5 vs 5 and 8 vs 8 unpaired.  A single structure with 3 trainings against 5 or 8 structures
    (Welch with its side's 2 degrees of freedom) covered 93.9-96.3% in the same simulation.
    """
    rng = np.random.default_rng(0)
    for n in (5, 8):
        for spread in (1.0, 2.0):
            a, b = rng.normal(0.0, 1.0, (4000, n)), rng.normal(0.0, spread, (4000, n))
            va, vb = a.var(axis=1, ddof=1) / n, b.var(axis=1, ddof=1) / n
            nu = (va + vb) ** 2 / ((va ** 2 + vb ** 2) / (n - 1))
            half = stats.t_quantile(0.975, nu) * np.sqrt(va + vb)
            coverage = np.mean(np.abs(a.mean(axis=1) - b.mean(axis=1)) <= half)
            assert abs(coverage - 0.95) < 0.02, (n, spread, coverage)
    # The vectorised interval is the one compare() prints.
    c = stats.compare(a[0], b[0])
    assert (c["low"], c["high"]) == pytest.approx((a[0].mean() - b[0].mean() - half[0],
                                                   a[0].mean() - b[0].mean() + half[0]))


def _row(method, seed, tseed, acc):
    structure = method if seed is None else f"{method}_s{seed}"
    return {"method": method, "structure": structure, "search_seed": seed, "train_seed": tseed, "test_accuracy": acc}


def test_comparisons_use_structure_means_unpaired_and_one_unit_per_fixed_method():
    # Structure means: nce 0.6005, 0.6105, 0.6205; tas 0.5505, 0.5605, 0.5705, 0.5805 (seed 7 has no nce partner).
    rows = [_row("nce", s, t, 0.60 + 0.01 * s + 0.001 * t) for s in range(3) for t in range(2)]
    rows += [_row("tas", s, t, 0.55 + 0.01 * i + 0.001 * t) for i, s in enumerate((0, 1, 2, 7)) for t in range(2)]
    rows += [_row("original", None, t, acc) for t, acc in enumerate([0.50, 0.70, 0.60])]
    by = {c["method"]: c for c in comparisons(rows, ("nce", "tas", "original"), "nce")}
    # nce vs tas, 3 vs 4 structures unpaired: C(7,3) = 35 relabelings; |sum_a - 3 T / 7| is 0.0771 for nce's
    # (the three largest) and 0.0729 for the three smallest, so nce's labeling alone is as extreme: p = 1/35.
    tas = by["tas"]
    assert (tas["test"], tas["units"], tas["relabelings"]) == ("permutation", [3, 4], 35)
    assert tas["p"] == pytest.approx(1 / 35) and tas["resolved"] is True
    assert tas["difference"] == pytest.approx(0.6105 - 0.5655)
    # Its Welch t interval by hand: structure variances 1e-4 (nce) and 1.6667e-4 (tas), SE^2 = 1e-4/3 + 1.6667e-4/4
    # = 7.5e-5, nu = SE^4 / ((1e-4/3)^2/2 + (1.6667e-4/4)^2/3) = 4.959; MDD = (t_.975 + t_.8) SE at nu.
    va, vb = 1e-4 / 3, (0.01 ** 2 * 5 / 3) / 4
    se, nu = np.sqrt(va + vb), (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 3)
    assert (tas["se"], tas["df"]) == pytest.approx((np.sqrt(7.5e-5), 4.959), rel=1e-3) and nu == pytest.approx(4.959, rel=1e-3)
    half = float(stats.t_quantile(0.975, nu)) * se
    assert (tas["low"], tas["high"]) == pytest.approx((0.045 - half, 0.045 + half), abs=1e-12)
    # t_.975 at 4.959 df: the tables' 2.571 (5 df) and 2.776 (4 df) interpolated in 1/df give 2.5778.
    assert half == pytest.approx(2.5778 * se, rel=1e-3)
    assert tas["mdd"] == pytest.approx((stats.t_quantile(0.975, nu) + stats.t_quantile(0.8, nu)) * se, rel=1e-9)
    # nce vs original: 3 structures against one structure (one unit) whose 3 trainings give its error.
    orig = by["original"]
    assert (orig["test"], orig["units"], orig["replicates"]) == ("welch_t", [3, 1], [None, 3])
    assert orig["difference"] == pytest.approx(0.6105 - 0.6)
    assert orig["se"] == pytest.approx(np.sqrt(0.0001 / 3 + 0.01 / 3)) and orig["resolved"] is False
    table = markdown([], list(by.values()))
    assert "| tas | +4.50 |" in table and "exact permutation (35 relabelings) | 3 vs 4 |" in table
    assert "| 3 vs 1 (3 trainings) |" in table
    # Holm over the two tested: tas's p = 1/35 is the smaller (the original's is above 0.05), 2/35 = 0.0571
    assert "| Holm over the 2 tested: adjusted p, resolved |" in table
    assert "exact permutation (35 relabelings) | 3 vs 4 | " in table and "| yes | 0.0571, no |" in table


def test_summary_md_compares_one_network_once_as_the_readme_block_does(tmp_path, monkeypatch):
    """WRPN at the original's cost trains the original's network: a study's summary.md compares it once
    (as the original) and says so, so Holm's family is the same as the README block's (two, not three)."""
    widths = {"original": [16, 32], "wrpn": [16, 32]}
    rows = [dict(_row(m, s, t, a), widths=widths.get(m) or [8 + s, 40], macs_ratio=1.0, params_ratio=1.0,
                 layers_expanded=0, expanded=[], macs=1, params=1, train_seconds=1.0, search_seconds=None)
            for m, s, accs in [("nce", 0, (0.61, 0.62)), ("nce", 1, (0.60, 0.61)), ("nce", 2, (0.63, 0.64)),
                               ("tas", 0, (0.55, 0.56)), ("tas", 1, (0.57, 0.56)), ("tas", 2, (0.54, 0.55)),
                               ("original", None, (0.50, 0.52)), ("wrpn", None, (0.50, 0.52))]
            for t, a in zip((1000, 1001), accs)]
    monkeypatch.setattr(study_results, "rows", lambda runs: rows)
    monkeypatch.setattr(study_results, "width_table", lambda runs, methods: None)
    study = StudyConfig(workdir=str(tmp_path), methods=("tas", "nce", "wrpn", "original"), reference="nce")
    out = study_results.write(str(tmp_path), study, [], figure=False)
    assert [c["method"] for c in out["comparisons"]] == ["tas", "original"]
    with open(tmp_path / "summary.md") as f:
        text = f.read()
    assert "| Holm over the 2 tested: adjusted p, resolved |" in text and "| wrpn | +" not in text
    assert "wrpn trains the same network as original (equal widths): one network, compared once, as original." in text


def test_width_table_columns_follow_the_method_table():
    # study.json is written with sorted keys: its width table lists the methods alphabetically
    widths = {"layers": ["stem"], "original": [16], "methods": {
        m: {"structures": n, "mean_ratio": [r], "wider": [k]}
        for m, n, r, k in [("nce", 2, 1.5, 2), ("original", 1, 1.0, 0), ("random", 3, 0.75, 1)]}}
    summ = [{"method": m, "structures": 1, "trainings": 1, "accuracy_mean": 0.5, "accuracy_std": 0.0,
             "structure_mean": 0.5, "structure_std": 0.0, "macs_ratio": 1.0, "params_ratio": 1.0,
             "layers_expanded": 0.0} for m in ("random", "nce", "original")]
    table = markdown(summ, [], widths)
    assert "| layer (original width) | random (3) | nce (2) | original (1) |" in table
    assert "| stem (16) | 0.75x, 1 wider | 1.50x, 2 wider | 1.00x |" in table


@pytest.mark.parametrize("pvalues, adjusted, resolved", [
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1: 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06
    ([0.01, 0.04, 0.03], [0.03, 0.06, 0.06], [True, False, False]),
    # an untested entry is out of the family (m = 3): 0.015, 0.04, 0.3
    ([0.005, None, 0.02, 0.3], [0.015, None, 0.04, 0.3], [True, None, True, False]),
    # step-down stops at the first: 0.02 x 3 = 0.06 fails, so the others (0.02 x 2 = 0.04) do not pass
    ([0.02, 0.02, 0.02], [0.06, 0.06, 0.06], [False, False, False]),
    ([0.6, 0.7], [1.0, 1.0], [False, False]),  # capped at 1
])
def test_holm_against_hand_adjustments(pvalues, adjusted, resolved):
    out = stats.holm(pvalues)
    assert [None if h is None else h["p_adjusted"] for h in out] == pytest.approx(adjusted)
    assert [None if h is None else h["resolved"] for h in out] == resolved


@pytest.mark.parametrize("bad", [float("nan"), -0.1, 1.5])
def test_holm_refuses_a_p_value_outside_0_1(bad):
    # a NaN sorts anywhere: it would silently reorder the step-down for the valid ones
    with pytest.raises(ValueError, match=r"p-values must be in \[0, 1\].*Received: "):
        stats.holm([0.01, bad])


# --- the statistics on spread-out data, against enumerations written out here ------------------------

def _splits_by_enumeration(a, b):
    """``(p, p_min)`` of the two-sided permutation test by listing every split of the pooled units into
    groups of ``len(a)`` and ``len(b)`` and comparing the difference of the two means (not the sums the
    library compares), the observed split included."""
    pooled, n = list(a) + list(b), len(a)
    diffs = []
    for chosen in itertools.combinations(range(len(pooled)), n):
        rest = [v for i, v in enumerate(pooled) if i not in chosen]
        diffs.append(abs(statistics.fmean(pooled[i] for i in chosen) - statistics.fmean(rest)))
    observed, tol = abs(statistics.fmean(a) - statistics.fmean(b)), 1e-12
    return (sum(d >= observed - tol for d in diffs) / len(diffs),
            sum(d >= max(diffs) - tol for d in diffs) / len(diffs))


def _flips_by_enumeration(d):
    """``(p, p_min)`` of the two-sided sign-flip test: every one of the ``2^n`` sign patterns listed."""
    sums = [abs(sum(s * v for s, v in zip(signs, d))) for signs in itertools.product((1, -1), repeat=len(d))]
    observed, tol = abs(sum(d)), 1e-12
    return sum(x >= observed - tol for x in sums) / len(sums), sum(x >= max(sums) - tol for x in sums) / len(sums)


def _t_quantile_by_integration(p, nu):
    """Student's t quantile from its density, ``f(x) = G((nu+1)/2) / (sqrt(nu pi) G(nu/2)) (1 + x^2/nu)^(-(nu+1)/2)``,
    integrated by the trapezoid rule from 0 (``F(x) = 1/2 + int_0^x f``) and inverted by interpolation: a path
    that shares nothing with the library's incomplete beta function (a step of 3e-5: error ~1e-9 for p <= 0.99)."""
    x = np.linspace(0.0, 12.0, 400_001)
    f = math.exp(math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2)) / math.sqrt(nu * math.pi) * (1 + x * x / nu) ** (
        -(nu + 1) / 2)
    cdf = 0.5 + np.concatenate([[0.0], np.cumsum((f[1:] + f[:-1]) / 2) * (x[1] - x[0])])
    return np.interp(p, cdf, x)


def _welch_by_hand(a, b):
    """``(difference, SE, nu)`` of two groups from their sample variances (Welch-Satterthwaite)."""
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    nu = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return statistics.fmean(a) - statistics.fmean(b), math.sqrt(va + vb), nu


def test_permutation_and_sign_flip_p_values_on_spread_out_data_match_full_enumerations():
    # Normal draws with a shift (no ties, no zero variance), sizes equal and unequal; each p is neither the
    # smallest possible nor 1, so a count off by one relabeling shows.
    rng = np.random.default_rng(11)
    for n, m, shift in ((3, 4, 0.8), (4, 4, 1.0), (5, 3, 0.6), (2, 6, 1.2), (6, 5, 0.9)):
        a, b = rng.normal(shift, 1.0, n).tolist(), rng.normal(0.0, 1.5, m).tolist()
        p, p_min = _splits_by_enumeration(a, b)
        got = stats.permutation_test(a, b)
        assert (got["p"], got["p_min"], got["relabelings"]) == (pytest.approx(p, abs=1e-12),
                                                                 pytest.approx(p_min, abs=1e-12), math.comb(n + m, n))
        assert p_min < p < 1, (n, m, p)
    for n in (4, 7, 10):
        d = rng.normal(0.8, 1.0, n).tolist()
        p, p_min = _flips_by_enumeration(d)
        got = stats.sign_flip_test(d)
        assert (got["p"], got["p_min"], got["relabelings"]) == (pytest.approx(p, abs=1e-12),
                                                                 pytest.approx(p_min, abs=1e-12), 2 ** n)
        assert p_min < p < 1, (n, p)


def test_welch_interval_end_points_against_an_integrated_t_density():
    rng = np.random.default_rng(5)
    for n, m in ((3, 4), (5, 5), (4, 8)):
        a, b = rng.normal(0.7, 0.03, n).tolist(), rng.normal(0.68, 0.06, m).tolist()
        diff, se, nu = _welch_by_hand(a, b)
        assert nu != round(nu)  # a fractional nu: no table to read it from
        t975, t80 = _t_quantile_by_integration([0.975, 0.8], nu)
        half = t975 * se
        c = stats.compare(a, b)
        assert (c["difference"], c["se"], c["df"]) == pytest.approx((diff, se, nu), rel=1e-9)
        assert (c["low"], c["high"]) == pytest.approx((diff - half, diff + half), rel=1e-7, abs=1e-9)
        assert c["mdd"] == pytest.approx((t975 + t80) * se, rel=1e-7)
        assert stats.welch_interval(a, b) == pytest.approx((diff, diff - half, diff + half), rel=1e-7, abs=1e-9)


def test_resolved_is_p_below_alpha_on_spread_out_data():
    # 3 structures against 7, in points: with S the sum of the first group and T the pooled sum, a split's
    # |difference of means| is |10 S - 3 T| / 21, so the splits are ranked by |10 S - 3 T| (integers here).
    nce = [0.66, 0.67, 0.69]
    # Against these 7 the observed |10 S - 3 T| is 139; the 120 splits' largest are 181, 161, 159, 151, 149,
    # 139: 6 of 120, p = 0.05 exactly. Not below alpha = 0.05: not resolved.
    at_alpha = [0.55, 0.56, 0.59, 0.61, 0.62, 0.64, 0.68]
    # With 0.63 for 0.68 the observed is 154, second of the 120 (166, 154, ...): p = 2/120, resolved.
    below = [0.55, 0.56, 0.59, 0.61, 0.62, 0.63, 0.64]
    # With 0.70 for 0.68 the observed is 133, tenth: p = 10/120, not resolved.
    above = [0.55, 0.56, 0.59, 0.61, 0.62, 0.64, 0.70]
    for other, p, resolved in ((at_alpha, 6 / 120, False), (below, 2 / 120, True), (above, 10 / 120, False)):
        assert _splits_by_enumeration(nce, other)[0] == pytest.approx(p)
        c = stats.compare(nce, other)
        assert (c["test"], c["p"], c["resolved"]) == ("permutation", pytest.approx(p), resolved)
        assert c["se"] > 0 and c["low"] < c["difference"] < c["high"]
    # One structure trained three times against four structures: Welch's t with the single side's error
    # from its trainings; the two-sided p from the integrated density, p = 2 (1 - F(|t|)) at nu.
    structures = [0.70, 0.72, 0.71, 0.735]
    for trainings, resolved in (([0.60, 0.62, 0.64], True), ([0.58, 0.70, 0.76], False)):
        va, vb = statistics.variance(structures) / 4, statistics.variance(trainings) / 3
        se, diff = math.sqrt(va + vb), statistics.fmean(structures) - statistics.fmean(trainings)
        nu = (va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 2)
        x = np.linspace(0.0, abs(diff) / se, 400_001)
        density = math.exp(math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2)) / math.sqrt(nu * math.pi) * (
            1 + x * x / nu) ** (-(nu + 1) / 2)
        p = 1 - 2 * float(np.sum((density[1:] + density[:-1]) / 2) * (x[1] - x[0]))
        c = stats.compare(structures, [statistics.fmean(trainings)], replicates_b=trainings)
        assert (c["test"], c["df"], c["se"]) == ("welch_t", pytest.approx(nu), pytest.approx(se))
        assert c["p"] == pytest.approx(p, rel=1e-6) and c["resolved"] is resolved and (p < 0.05) is resolved


def test_study_figure_shows_each_structures_trainings(tmp_path, figure_data):
    """Fig. 3 from rows worked out here: per method a point per structure at the mean of its trainings
    (spread over -0.3..+0.3 in row order, one structure at the method's x), a bar from its lowest to its
    highest training, and a line over x +- 0.38 at the mean of the structure means (not of the trainings:
    the structures here have 3, 2 and 2 trainings, so the two differ)."""
    from nce_tf.study.figure import plot

    accs = {"nce_s0": [0.61, 0.64, 0.58], "nce_s1": [0.66, 0.62], "nce_s2": [0.55, 0.57],
            "original": [0.50, 0.56, 0.53]}
    rows = [_row(name.split("_")[0], int(name[-1]) if "_s" in name else None, 1000 + t, acc)
            for name, values in accs.items() for t, acc in enumerate(values)]
    plot(rows, ("random", "nce", "original"), str(tmp_path / "study.png"))  # random: no rows, no column
    (ax,) = figure_data["study.png"]
    assert ax["xticklabels"] == ["nce", "original"]
    places = {"nce_s0": -0.3, "nce_s1": 0.0, "nce_s2": 0.3, "original": 1.0}
    means = {k: 100 * sum(v) / len(v) for k, v in accs.items()}  # 61, 64, 56, 53
    points = [(float(x[0]), float(y[0])) for marker, x, y in ax["lines"] if marker == "o"]
    assert points == [pytest.approx((places[k], means[k])) for k in accs]
    nce_line = (means["nce_s0"] + means["nce_s1"] + means["nce_s2"]) / 3  # 60.33; the trainings' mean is 60.43
    expected = [((places[k], 100 * min(v)), (places[k], 100 * max(v))) for k, v in accs.items()]
    expected += [((-0.38, nce_line), (0.38, nce_line)), ((0.62, means["original"]), (1.38, means["original"]))]
    shown = sorted(tuple(np.ravel(seg)) for seg in ax["segments"])
    np.testing.assert_allclose(shown, sorted(tuple(np.ravel(seg)) for seg in expected), rtol=0, atol=1e-9)


# --- the plan ------------------------------------------------------------------------------------

def test_plan_interleaves_methods_and_separates_seeds(tmp_path):
    from nce_tf.search import SearchConfig
    from nce_tf.train import TrainConfig

    study = StudyConfig(workdir=str(tmp_path), methods=("random", "nce", "wrpn", "original"), searches=2,
                        trainings=2, search_seed=5, train_seed=100).validate()
    runs = plan(study, TrainConfig(workdir=str(tmp_path), **TINY), SearchConfig(**TINY_SEARCH))
    keys = [r.key for r in runs]
    assert keys == ["random_s5/search", "random_s5/train_t100", "random_s5/train_t101",
                    "nce_s5/search", "nce_s5/train_t100", "nce_s5/train_t101",
                    "wrpn/search", "wrpn/train_t100", "wrpn/train_t101",
                    "original/train_t100", "original/train_t101",
                    "random_s6/search", "random_s6/train_t100", "random_s6/train_t101",
                    "nce_s6/search", "nce_s6/train_t100", "nce_s6/train_t101"]
    by_key = {r.key: r for r in runs}
    assert by_key["nce_s6/search"].train_config.seed == 6 and by_key["nce_s6/search"].search_config.mode == "nce"
    assert by_key["nce_s6/train_t101"].train_config.seed == 101
    assert by_key["nce_s6/train_t101"].train_config.arch == os.path.join(by_key["nce_s6/search"].workdir, "arch.json")
    assert by_key["original/train_t100"].train_config.model == "resnet8"
    assert by_key["original/train_t100"].train_config.arch == ""
    # a trained network starts the searches only; every training is from scratch
    runs = plan(study, TrainConfig(workdir=str(tmp_path), init_from="runs/r8_w2a2", pact_init="stats", **TINY),
                SearchConfig(**TINY_SEARCH))
    starts = {r.key: (r.train_config.init_from, r.train_config.pact_init) for r in runs}
    assert {k for k, v in starts.items() if v == ("runs/r8_w2a2", "stats")} == {k for k in keys if "search" in k}
    assert {k for k, v in starts.items() if v == ("", "fixed")} == {k for k in keys if "train_t" in k}


# --- a study end to end ----------------------------------------------------------------------------

@pytest.mark.heavy
@pytest.mark.slow  # 83 s in the suite (.ci/run runs it with --slow)
def test_study_of_two_methods_two_searches_two_trainings(tmp_path, figure_data):
    from nce_tf import arch as arch_lib
    from nce_tf import models
    from nce_tf.cost import count_arch
    from nce_tf.search import SearchConfig
    from nce_tf.train import TrainConfig

    workdir = str(tmp_path / "study")
    study = StudyConfig(workdir=workdir, methods=("random", "nce"), searches=2, trainings=2, resamples=2000)
    out = run_study(study, TrainConfig(workdir=workdir, **TINY), SearchConfig(**TINY_SEARCH), verbose=False,
                    in_process=True)
    rows = out["rows"]
    assert [(r["method"], r["search_seed"], r["train_seed"]) for r in rows] == [
        ("random", 0, 1000), ("random", 0, 1001), ("nce", 0, 1000), ("nce", 0, 1001),
        ("random", 1, 1000), ("random", 1, 1001), ("nce", 1, 1000), ("nce", 1, 1001)]
    original = count_arch("resnet8")
    for r in rows:
        arch = arch_lib.load_arch(os.path.join(workdir, "runs", r["structure"], "search", "arch.json"))
        assert r["widths"] == arch.widths
        cost = count_arch("resnet8", arch.widths)
        assert (r["macs"], r["params"]) == (cost.macs, cost.params)
        assert r["macs_ratio"] == pytest.approx(cost.macs / original.macs)
        with open(os.path.join(workdir, "runs", r["structure"], f"train_t{r['train_seed']}", "metrics.json")) as f:
            metrics = json.load(f)
        assert r["test_accuracy"] == metrics["test_accuracy"]
        # each row names what ran: the training's provenance and its structure's search's
        assert r["provenance"] == metrics["provenance"] and r["search_provenance"] == arch.extra["provenance"]
    # The summary and the comparison, recomputed from the rows.
    for s in out["summary"]:
        accs = [r["test_accuracy"] for r in rows if r["method"] == s["method"]]
        assert s["accuracy_mean"] == pytest.approx(statistics.fmean(accs))
        per = [statistics.fmean(accs[i:i + 2]) for i in (0, 2)]
        assert s["structure_mean"] == pytest.approx(statistics.fmean(per))
        assert s["structure_std"] == pytest.approx(statistics.stdev(per))
    (comp,) = out["comparisons"]
    assert (comp["reference"], comp["method"], comp["test"], comp["units"]) == ("nce", "random", "permutation", [2, 2])
    mean = lambda m: statistics.fmean(r["test_accuracy"] for r in rows if r["method"] == m)  # noqa: E731
    assert comp["difference"] == pytest.approx(mean("nce") - mean("random"))
    # The Welch t interval over structure means (two a side), recomputed from the rows.
    units = {m: [statistics.fmean(r["test_accuracy"] for r in rows if r["structure"] == f"{m}_s{s}") for s in (0, 1)]
             for m in ("nce", "random")}
    v = {m: statistics.variance(u) / 2 for m, u in units.items()}
    se = np.sqrt(v["nce"] + v["random"])
    assert comp["se"] == pytest.approx(se, abs=1e-12)
    if se > 0:  # the accuracies of 32 test images can tie, leaving no spread to test
        nu = se ** 4 / ((v["nce"] ** 2 + v["random"] ** 2) / 1)
        half = float(stats.t_quantile(0.975, nu)) * se
        assert (comp["low"], comp["high"]) == pytest.approx((comp["difference"] - half, comp["difference"] + half))
    # Two structures a side: C(4, 2) = 6 relabelings, a labeling and its mirror tie: p >= 2/6 (more when accuracies
    # of 32 test images tie), never resolved.
    assert comp["relabelings"] == 6 and comp["p_min"] >= 1 / 3 - 1e-12 and comp["resolved"] is False
    original_widths = models.default_widths("resnet8")
    for method in ("random", "nce"):  # the width table, recomputed from the rows' widths
        mine = {r["structure"]: r["widths"] for r in rows if r["method"] == method}
        expect = [statistics.fmean(w[i] / n for w in mine.values()) for i, n in enumerate(original_widths)]
        assert out["widths"]["methods"][method]["mean_ratio"] == pytest.approx(expect)
    with open(os.path.join(workdir, "study.csv"), newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 8 and [int(t["train_seed"]) for t in table] == [r["train_seed"] for r in rows]
    assert [float(t["test_accuracy"]) for t in table] == [r["test_accuracy"] for r in rows]
    # The figure (Fig. 3) shows the trainings' own accuracies: per method a point per structure (search
    # seed order, spread -0.3..+0.3) at the mean of its trainings' metrics.json, a bar from the lowest to
    # the highest, and a line at the mean over structures.
    (ax,) = figure_data["study.png"]
    assert ax["xticklabels"] == ["random", "nce"]
    points = [(float(x[0]), float(y[0])) for marker, x, y in ax["lines"] if marker == "o"]
    expect_points, expect_segments = [], []
    for x, method in enumerate(("random", "nce")):
        means = []
        for i, seed in enumerate((0, 1)):
            accs = []
            for t in (1000, 1001):
                with open(os.path.join(workdir, "runs", f"{method}_s{seed}", f"train_t{t}", "metrics.json")) as f:
                    accs.append(100 * json.load(f)["test_accuracy"])
            means.append(statistics.fmean(accs))
            expect_points.append((x - 0.3 + 0.6 * i, means[-1]))
            expect_segments.append([[x - 0.3 + 0.6 * i, min(accs)], [x - 0.3 + 0.6 * i, max(accs)]])
        expect_segments.append([[x - 0.38, statistics.fmean(means)], [x + 0.38, statistics.fmean(means)]])
    assert points == [pytest.approx(p) for p in expect_points]
    shown = sorted(tuple(np.ravel(s)) for s in ax["segments"])
    np.testing.assert_allclose(shown, sorted(tuple(np.ravel(s)) for s in expect_segments), rtol=0, atol=1e-9)
    # Summarizing starts no run and reads the same rows back; a directory without a study is refused.
    again = run_study(study, TrainConfig(workdir=workdir, **TINY), SearchConfig(**TINY_SEARCH), verbose=False,
                      summarize_only=True)
    assert again["rows"] == rows
    with pytest.raises(UsageError, match="No study"):
        run_study(dataclasses.replace(study, workdir=str(tmp_path / "empty")), TrainConfig(workdir=workdir, **TINY),
                  SearchConfig(**TINY_SEARCH), summarize_only=True)
    with open(os.path.join(workdir, "summary.md")) as f:
        text = f.read()
    assert "| nce minus | difference (points) | 95% Welch t interval | p | test |" in text
    assert "exact permutation (6 relabelings) | 2 vs 2 |" in text and f"| no (p >= {comp['p_min']:.3g} always) |" in text


# --- a killed study, re-run ----------------------------------------------------------------------

@pytest.mark.heavy
@pytest.mark.slow  # 48 s in the suite (.ci/run runs it with --slow)
def test_killed_study_continues_without_redoing_finished_runs(tmp_path):
    workdir = str(tmp_path / "study")
    cmd = [sys.executable, TOOL, f"--workdir={workdir}", "--methods=random", "--searches=1", "--trainings=2",
           "--jobs=1", "--resamples=200"] + _flags(TINY)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=_env())
    done_dir = os.path.join(workdir, "runs")

    def finished():
        return sorted(os.path.join(d, f) for d, _, fs in os.walk(done_dir) for f in fs if f.endswith(".done.json"))

    deadline = time.time() + 240
    while len(finished()) < 2 and time.time() < deadline and proc.poll() is None:  # the search and a training
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {p: (os.path.getmtime(p), open(p).read()) for p in finished()}
    assert len(first) == 2, first
    with open(os.path.join(workdir, "study.json")) as f:
        rows_before = json.load(f)["rows"]

    subprocess.run(cmd, check=True, capture_output=True, timeout=300, env=_env())
    with open(os.path.join(workdir, "study.json")) as f:
        out = json.load(f)
    assert out["runs_finished"] == out["runs_planned"] == 3
    for path, (mtime, text) in first.items():  # not redone
        assert (os.path.getmtime(path), open(path).read()) == (mtime, text)
        with open(path[: -len(".done.json")] + ".log") as f:
            assert f.read().count("== nce-tf study:") == 1
    assert rows_before and out["rows"][: len(rows_before)] == rows_before


# --- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, needle", [
    (["--methods=random,darts"], "methods="),
    (["--searches=0"], "searches=0"),
    (["--trainings=0"], "trainings=0"),
    ([f"--jobs={(os.cpu_count() or 1) + 1}"], "jobs="),
    (["--model=resnet18"], "does not fit the model"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, extra, needle):
    workdir = tmp_path / "study"
    proc = subprocess.run([sys.executable, TOOL, f"--workdir={workdir}"] + _flags(TINY) + extra,
                          capture_output=True, text=True, timeout=120, env=_env())
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr
    assert not workdir.exists()


def test_seed_ties_against_the_relabelling_worked_out_by_hand():
    # Two structures whose three trainings of one seed score alike (a shared random stream): 3 ties.
    # Relabelling each structure's seeds: the ties are the fixed points of a random permutation of 3,
    # 3 with probability 1/6, 1 with 3/6, 0 with 2/6: mean 1, P(>= 3) = 1/6.
    rows = [{"structure": s, "train_seed": t, "test_accuracy": a, "widths": w}
            for s, w in (("a", [8]), ("b", [16])) for t, a in ((0, 0.50), (1, 0.60), (2, 0.70))]
    out = seed_ties(rows, resamples=20_000)
    assert (out["pairs"], out["ties"]) == (3, 3)
    assert out["expected"] == pytest.approx(1.0, abs=0.03) and out["p"] == pytest.approx(1 / 6, abs=0.01)
    # The same widths are one network trained twice: never counted (WRPN at the original's cost).
    same = [{**r, "widths": [8]} for r in rows]
    assert seed_ties(same, resamples=10)["pairs"] == 0
    # ... and a third network's tie with that one network is one coincidence, not one per name:
    # c ties a (= a2) at seed 0 only.
    twice = rows + [{**r, "structure": "a2"} for r in rows[:3]]
    third = [{**r, "structure": "c", "widths": [24], "test_accuracy": 0.5 if r["train_seed"] == 0 else 0.9}
             for r in rows[:3]]
    out = seed_ties([r for r in twice if r["structure"] != "b"] + third, resamples=10)
    assert (out["pairs"], out["ties"]) == (3, 1)
    # a seed trained under one of the two names only still counts (c ties it at seed 3)
    extra = [{"structure": "a2", "train_seed": 3, "test_accuracy": 0.8, "widths": [8]},
             {"structure": "c", "train_seed": 3, "test_accuracy": 0.8, "widths": [24]}]
    out = seed_ties([r for r in twice if r["structure"] != "b"] + third + extra, resamples=10)
    assert (out["pairs"], out["ties"]) == (4, 2)


def test_same_networks_merges_only_fixed_methods_with_one_network():
    def rows(method, widths):
        return [{"method": method, "widths": w} for w in widths]

    original = [[16, 32]]
    data = rows("original", original) + rows("wrpn", original) + rows("nce", original) + rows("tas", original)
    # WRPN at the original's widths is the original (listed first or not); a search that returned the
    # original's widths stays a method of its own, as does the reference
    assert same_networks(data, ["random", "tas", "nce", "wrpn", "original"]) == {"wrpn": "original"}
    assert same_networks(rows("original", original) + rows("wrpn", [[24, 48]]), ["wrpn", "original"]) == {}
    assert same_networks(rows("wrpn", original), ["wrpn", "original"]) == {}  # the original not trained yet
