"""The rank correlation test of nce_tf.stats (the study's tests of the other functions are in test_study.py)."""

import itertools

import numpy as np
import pytest

from nce_tf import stats
from nce_tf.analysis.metrics import kendall_tau
from nce_tf.errors import UsageError


def test_rank_correlation_by_hand():
    # x = 1..4, y one adjacent swap away: 5 concordant and 1 discordant pair of 6, tau = 4/6.  Of the 24
    # pairings, |tau| = 1 for 2 (identity, reversal) and |tau| = 2/3 for the 3 + 3 one swap from them.
    out = stats.rank_correlation_test([1, 2, 3, 4], [1, 2, 4, 3])
    assert out["tau"] == pytest.approx(2 / 3) and out["exact"] and out["relabelings"] == 24
    assert out["p"] == pytest.approx(8 / 24) and out["p_min"] == pytest.approx(2 / 24)


def test_exact_p_equals_a_brute_force_over_every_pairing_with_ties():
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 3, 7), np.round(rng.normal(size=7), 1)  # ties in x (e.g. layers not expanded)
    observed = abs(kendall_tau(x, y))
    taus = [abs(kendall_tau(x, y[list(order)])) for order in itertools.permutations(range(7))]
    out = stats.rank_correlation_test(x, y)
    assert out["tau"] == pytest.approx(kendall_tau(x, y), abs=1e-12)
    assert out["p"] == pytest.approx(np.mean([t >= observed - 1e-12 for t in taus]), abs=1e-12)


def test_monte_carlo_p_is_close_to_the_exact_one():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=8), rng.normal(size=8)
    y = y + 0.8 * x  # some association, so p is not near 1
    exact = stats.rank_correlation_test(x, y)
    mc = stats.rank_correlation_test(x, y, max_enumerations=10, resamples=20_000, seed=1)
    assert not mc["exact"] and mc["relabelings"] == 20_000 and mc["seed"] == 1
    assert abs(mc["p"] - exact["p"]) < 4 * np.sqrt(exact["p"] * (1 - exact["p"]) / 20_000) + 1e-4
    assert mc == stats.rank_correlation_test(x, y, max_enumerations=10, resamples=20_000, seed=1)  # seeded


def test_a_constant_side_has_no_correlation_and_bad_input_is_refused():
    assert stats.rank_correlation_test([0, 0, 0, 0], [1, 2, 3, 4])["tau"] is None
    with pytest.raises(UsageError, match="3 x values and 4 y values"):
        stats.rank_correlation_test([1, 2, 3], [1, 2, 3, 4])
