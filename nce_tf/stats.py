"""Statistics that hold at small n: an exact permutation test, a Welch t interval, the minimum
detectable difference (numpy only).

A study compares methods of choosing widths by a handful of *structures* each (5 to 10), every
structure scored by the mean test accuracy of its trainings.  At those sizes the usual
large-sample tools mislead: a 95% percentile bootstrap of a difference of two means of 5 covers
about 83% (``tests/test_study.py`` measures it next to the interval used here).  This module
gives, for two groups of units ``a`` and ``b``:

- :func:`permutation_test`: the two-sided exact permutation test of "the labels do not matter".
  Statistic ``|mean(a) - mean(b)|``; the p-value is the share of all ``C(n + m, n)``
  relabelings (the observed one included) whose statistic is at least the observed one.  It
  assumes nothing about the distribution, and its p-value is exact; but it is discrete: its
  smallest value is about ``1 / C(n + m, n)`` (``2 / C`` when ``n == m``: a relabeling and its
  mirror tie), so 3 vs 3 can never give less than ``2 / 20 = 0.1``.  Past ``max_enumerations``
  relabelings it is a seeded Monte Carlo over ``resamples`` of them, ``p = (1 + hits) / (1 + R)``.
- :func:`sign_flip_test`: the exact paired test (all ``2^n`` sign flips of the differences), for
  designs whose pairs share something that moves both members (see :mod:`nce_tf.study.results`
  for which do); 5 pairs of one sign give ``2 / 32 = 0.0625``, never below 0.05.
- :func:`welch_interval`: ``diff +- t_{(1+level)/2, nu} * SE`` with ``SE^2 = v_a + v_b`` (each
  side's variance of its mean) and Welch-Satterthwaite ``nu = SE^4 / (v_a^2/df_a + v_b^2/df_b)``.
  Its coverage at n = 5 and 8 per group is within a point of nominal (simulated in the tests).
  The test and the interval answer different questions and may disagree: the permutation test's
  null is "one distribution for both" (a difference in spread counts against it), the interval is
  about the means alone.  In the committed ResNet-8 study NCE minus random has p = 0.016 (exact,
  4 of 252 relabelings as extreme) and the Welch interval [-1.06, +6.88] points: random's
  structures spread 3.2 points, NCE's 0.9, and with 4.6 degrees of freedom the interval is wide.
- :func:`min_detectable_difference`: ``(t_{1-alpha/2, nu} + t_{power, nu}) * SE``, the true
  difference a two-sided level-``alpha`` test of this design would detect with probability
  ``power`` (the normal-approximation power formula with t quantiles; the exact answer needs
  the noncentral t and is a little larger at very small ``nu``).  A difference below it that
  is "not resolved" says the design was too small to tell, not that the methods are equal.
- :func:`holm`: Holm's step-down adjustment of several comparisons' p-values (the family-wise
  error at ``alpha`` whatever their dependence).
- :func:`compare`: all of the above for one comparison, including one side with a single
  structure (the original network, WRPN's widening).  A single structure is a fixed network,
  not a draw from a method, so the permutation test (which asks whether it is exchangeable
  with the other side's structures, and cannot give less than ``1 / (n + 1)``: 0.17 against
  5 structures, 0.11 against 8) is the wrong question and too coarse to answer.  What can be
  tested is whether the other method's mean structure differs from this network's accuracy:
  a Welch t test whose single side's standard error comes from its replicate trainings
  (``var(trainings) / k``, ``k - 1`` degrees of freedom).  Without two trainings of it, its
  accuracy's error is unknown and nothing is tested.

The Student t distribution is computed here (:func:`t_cdf`, :func:`t_quantile`) from the
regularized incomplete beta function, ``P(|T| > t) = I_{nu / (nu + t^2)}(nu / 2, 1 / 2)``,
evaluated by its continued fraction (modified Lentz; *Numerical Recipes*, 3rd ed., 6.4).

Example:

>>> permutation_test([1, 2, 3], [4, 5, 6])["p"]  # 2 of the 20 relabelings are as extreme
0.1
>>> round(float(t_quantile(0.975, 4)), 3)
2.776
"""

import itertools
import math

import numpy as np

from nce_tf.errors import UsageError

MAX_ENUMERATIONS = 1_000_000  # exact enumeration up to this many relabelings (C(22, 11) = 705,432)
_CHUNK = 100_000  # relabelings evaluated at a time (bounded memory)
_TINY = 1e-300
_lgamma = np.vectorize(math.lgamma, otypes=[np.float64])


def _values(x, name):
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise UsageError(f"Invalid {name}. Received: {name}={x.tolist()!r}. Allowed: one or more finite values.")
    return x


# --- the Student t distribution -----------------------------------------------------------------

def _betacf(a, b, x):
    """Continued fraction of the incomplete beta function (modified Lentz), elementwise."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = np.ones_like(x)
    d = 1.0 - qab * x / qap
    d = 1.0 / np.where(np.abs(d) < _TINY, _TINY, d)
    h = d.copy()
    for m in range(1, 501):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / np.where(np.abs(d) < _TINY, _TINY, d)
            c = 1.0 + aa / c
            c = np.where(np.abs(c) < _TINY, _TINY, c)
            step = d * c
            h = h * step
        if np.all(np.abs(step - 1.0) < 1e-15):
            break
    return h


def betainc(a, b, x):
    """The regularized incomplete beta function ``I_x(a, b)``, elementwise (``a, b > 0``, ``0 <= x <= 1``)."""
    a, b, x = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, x)))
    with np.errstate(divide="ignore"):
        log_front = (_lgamma(a + b) - _lgamma(a) - _lgamma(b) + a * np.log(x) + b * np.log1p(-x))
    front = np.exp(log_front)
    # The fraction converges fast below the mean of the beta distribution; above it, use the symmetry
    # I_x(a, b) = 1 - I_{1-x}(b, a).
    low = x < (a + 1.0) / (a + b + 2.0)
    xs = np.where(low, x, 1.0 - x)
    first, second = np.where(low, a, b), np.where(low, b, a)
    part = front * _betacf(first, second, xs) / first
    return np.where(x <= 0, 0.0, np.where(x >= 1, 1.0, np.where(low, part, 1.0 - part)))


def t_sf2(t, df):
    """Two-sided tail ``P(|T| >= |t|)`` of Student's t with ``df`` degrees of freedom, elementwise.

    Computed directly (not as ``1 - cdf``), so tiny p-values keep their digits.
    """
    t, df = np.broadcast_arrays(np.asarray(t, dtype=np.float64), np.asarray(df, dtype=np.float64))
    return betainc(df / 2.0, np.full_like(df, 0.5), df / (df + t * t))


def t_cdf(t, df):
    """``P(T <= t)`` for Student's t with ``df`` (> 0, real) degrees of freedom, elementwise.

    Example:

    >>> round(float(t_cdf(1.0, 1)), 6)  # df = 1 is the Cauchy: 1/2 + atan(1)/pi
    0.75
    """
    t = np.asarray(t, dtype=np.float64)
    half_tail = t_sf2(t, df) / 2.0
    return np.where(t > 0, 1.0 - half_tail, half_tail)


def t_quantile(p, df):
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom, elementwise (bisection on the tail).

    Example:

    >>> [round(float(t_quantile(0.975, n)), 3) for n in (4, 7, 10)]
    [2.776, 2.365, 2.228]
    """
    p, df = np.broadcast_arrays(np.asarray(p, dtype=np.float64), np.asarray(df, dtype=np.float64))
    if np.any((p <= 0) | (p >= 1)) or np.any(df <= 0):
        raise UsageError(f"Invalid t quantile. Received: p={p.tolist()!r}, df={df.tolist()!r}. "
                         "Allowed: 0 < p < 1, df > 0.")
    tail = 2.0 * np.minimum(p, 1.0 - p)  # two-sided tail of |t|
    hi = np.ones_like(p)
    while np.any(grow := t_sf2(hi, df) > tail):  # bracket: P(|T| >= hi) <= tail
        hi = np.where(grow, hi * 2.0, hi)
    lo = np.zeros_like(p)
    for _ in range(64):
        mid = (lo + hi) / 2.0
        above = t_sf2(mid, df) > tail  # the quantile lies above mid
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    q = (lo + hi) / 2.0
    return np.where(p < 0.5, -q, q)


# --- tests ------------------------------------------------------------------------------------------

def _mc_or_exact(total, max_enumerations, resamples, seed):
    if resamples < 1:
        raise UsageError(f"Invalid resamples. Received: resamples={resamples!r}. Allowed: >= 1.")
    exact = total <= max_enumerations
    return {"exact": exact, "relabelings": int(total if exact else resamples), "seed": None if exact else seed}


def permutation_test(a, b, *, max_enumerations=MAX_ENUMERATIONS, resamples=100_000, seed=0):
    """Two-sided permutation test of ``mean(a) - mean(b)``.

    Args:
        a, b: the units of the two groups (one or more each).
        max_enumerations: enumerate every relabeling when there are at most this many.
        resamples: otherwise, random relabelings drawn (seeded by ``seed``).

    Returns:
        ``{"p", "p_min", "exact", "relabelings", "seed"}``: ``p_min`` is the smallest p-value
        these group sizes can give (exact enumeration), ``1 / (1 + resamples)`` for Monte Carlo.

    Example:

    >>> permutation_test([5, 6], [1, 2, 3])["p"]  # 1 of the C(5, 2) = 10 relabelings
    0.1
    """
    a, b = _values(a, "a"), _values(b, "b")
    x = np.concatenate([a, b])
    n, big_n = a.size, x.size
    # |mean(a*) - mean(b*)| = |sum(a*) - n * total / N| * N / (n * m): compare sums (less round-off).
    centre = n * x.sum() / big_n
    observed = abs(a.sum() - centre)
    tol = 1e-9 * (np.abs(x).sum() + 1e-300)
    out = _mc_or_exact(math.comb(big_n, n), max_enumerations, resamples, seed)
    if out["exact"]:
        combos = itertools.combinations(range(big_n), n)
        hits = top = 0
        best = -1.0
        while chunk := list(itertools.islice(combos, _CHUNK)):
            stat = np.abs(x[np.asarray(chunk, dtype=np.intp)].sum(axis=1) - centre)
            hits += int(np.sum(stat >= observed - tol))
            m = stat.max()
            if m > best + tol:
                best, top = m, int(np.sum(stat >= m - tol))
            elif m >= best - tol:
                top += int(np.sum(stat >= best - tol))
        out.update(p=hits / out["relabelings"], p_min=top / out["relabelings"])
    else:
        out.update(_monte_carlo(lambda rng, rows: np.abs(
            x[np.argsort(rng.random((rows, big_n)), axis=1)[:, :n]].sum(axis=1) - centre), observed - tol,
            resamples, seed))
    return out


def sign_flip_test(d, *, max_enumerations=MAX_ENUMERATIONS, resamples=100_000, seed=0):
    """Two-sided exact sign-flip test of ``mean(d) = 0`` for paired differences ``d``.

    Under "the pairs' two members are exchangeable" each difference's sign is a fair coin: the
    p-value is the share of the ``2^n`` sign patterns whose ``|sum|`` is at least the observed one
    (Monte Carlo over ``resamples`` patterns past ``max_enumerations``).

    Returns:
        ``{"p", "p_min", "exact", "relabelings", "seed"}`` as :func:`permutation_test`.

    Example:

    >>> sign_flip_test([0.01, 0.02, 0.01, 0.03, 0.02])["p"]  # 5 of one sign: 2 of 32 patterns
    0.0625
    """
    d = _values(d, "d")
    observed = abs(d.sum())
    tol = 1e-9 * (np.abs(d).sum() + 1e-300)
    out = _mc_or_exact(2 ** d.size, max_enumerations, resamples, seed)
    if out["exact"]:
        hits = 0
        best, top = np.abs(d).sum(), 0  # the largest |sum|: every sign alike (and its mirror)
        for start in range(0, out["relabelings"], _CHUNK):
            codes = np.arange(start, min(start + _CHUNK, out["relabelings"]))
            signs = 1.0 - 2.0 * ((codes[:, None] >> np.arange(d.size)) & 1)
            stat = np.abs(signs @ d)
            hits += int(np.sum(stat >= observed - tol))
            top += int(np.sum(stat >= best - tol))
        out.update(p=hits / out["relabelings"], p_min=top / out["relabelings"])
    else:
        out.update(_monte_carlo(lambda rng, rows: np.abs(rng.choice((-1.0, 1.0), size=(rows, d.size)) @ d),
                                observed - tol, resamples, seed))
    return out


def _monte_carlo(statistics, threshold, resamples, seed):
    """``{"p", "p_min"}`` of a seeded Monte Carlo test: ``statistics(rng, rows)`` draws ``rows`` random
    relabelings' statistics, ``_CHUNK`` at a time; ``p = (1 + hits) / (1 + resamples)``."""
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, resamples, _CHUNK):
        hits += int(np.sum(statistics(rng, min(_CHUNK, resamples - start)) >= threshold))
    return {"p": (1 + hits) / (1 + resamples), "p_min": 1 / (1 + resamples)}


def rank_correlation_test(x, y, *, max_enumerations=MAX_ENUMERATIONS, resamples=20_000, seed=0):
    """Kendall's tau-b of ``x`` and ``y`` with a two-sided permutation test of "no association".

    Under the null every pairing of the ``y`` values with the ``x`` values is equally likely; the
    p-value is the share of the ``n!`` pairings whose ``|tau|`` is at least the observed one
    (exact up to ``max_enumerations`` pairings, n <= 9; past it a seeded Monte Carlo over
    ``resamples`` pairings, ``p = (1 + hits) / (1 + R)``).  Ties (e.g. layers no search expanded)
    are handled by tau-b; a permutation keeps both tie structures, so tau-b's denominator is fixed
    and the statistic is the concordance sum.

    Args:
        x, y: paired values (at least 3 pairs).
        max_enumerations: enumerate every pairing when there are at most this many.
        resamples: otherwise, random pairings drawn (seeded by ``seed``).

    Returns:
        ``{"tau", "p", "p_min", "n", "exact", "relabelings", "seed"}`` (``p_min`` as
        :func:`permutation_test`'s); ``tau`` and ``p`` are ``None`` when either side is constant
        (no ranking to correlate).

    Example:

    >>> out = rank_correlation_test([1, 2, 3, 4], [1, 2, 4, 3])  # one swap: tau = (5 - 1) / 6
    >>> round(out["tau"], 3), out["p"]  # 8 of the 24 pairings have |tau| >= 2/3
    (0.667, 0.3333333333333333)
    """
    x, y = _values(x, "x"), _values(y, "y")
    if x.size != y.size or x.size < 3:
        raise UsageError(f"Invalid pairs. Received: {x.size} x values and {y.size} y values. Allowed: equal "
                         f"counts, at least 3.")
    upper = np.triu_indices(x.size, 1)
    dx = np.sign(x[:, None] - x[None, :])[upper]
    pairs = lambda v: np.sign(v[..., :, None] - v[..., None, :])[..., upper[0], upper[1]]  # noqa: E731
    dy = pairs(y)
    denominator = np.sqrt(float((dx != 0).sum()) * float((dy != 0).sum()))
    out = {"n": int(x.size), **_mc_or_exact(math.factorial(x.size), max_enumerations, resamples, seed)}
    if denominator == 0:
        return {**out, "tau": None, "p": None, "p_min": None}
    observed = float(dx @ dy)
    tol = 1e-9 * dx.size
    stat = lambda order: np.abs(pairs(y[order]) @ dx)  # noqa: E731  (|concordance| of each pairing)
    if out["exact"]:
        perms = itertools.permutations(range(x.size))
        values = np.concatenate([stat(np.asarray(chunk, dtype=np.intp))
                                 for chunk in iter(lambda: list(itertools.islice(perms, 2000)), [])])
        out.update(p=float(np.mean(values >= abs(observed) - tol)),
                   p_min=float(np.mean(values >= values.max() - tol)))
    else:
        # Chunks of 2,000 pairings keep the [rows, n(n-1)/2] sign matrix small.
        draws = lambda rng, rows: np.concatenate([  # noqa: E731
            stat(np.argsort(rng.random((k, x.size)), axis=1))
            for k in [2000] * (rows // 2000) + ([rows % 2000] if rows % 2000 else [])])
        out.update(_monte_carlo(draws, abs(observed) - tol, resamples, seed))
    return {**out, "tau": float(observed / denominator)}


# --- the interval and the design's resolution ------------------------------------------------------

def side(units, replicates=None):
    """One side of a comparison: ``(mean, variance of the mean, degrees of freedom)``.

    Several units: their mean, ``var(units) / n`` and ``n - 1``.  One unit (a single structure):
    its value, and from its ``replicates`` (the structure's trainings, at least two)
    ``var(replicates) / k`` and ``k - 1``; ``(value, None, None)`` without them.
    """
    units = _values(units, "units")
    if units.size >= 2:
        return float(units.mean()), float(units.var(ddof=1) / units.size), units.size - 1
    reps = None if replicates is None else _values(replicates, "replicates")
    if reps is None or reps.size < 2:
        return float(units[0]), None, None
    return float(units[0]), float(reps.var(ddof=1) / reps.size), reps.size - 1


def welch(side_a, side_b):
    """``(difference, SE, nu)`` of two sides (:func:`side`); Welch-Satterthwaite degrees of freedom."""
    (ma, va, fa), (mb, vb, fb) = side_a, side_b
    se2 = va + vb
    # No spread on either side: the degrees of freedom of the pooled sides (the interval is a point).
    nu = (fa + fb) if se2 == 0 else se2 ** 2 / (va ** 2 / fa + vb ** 2 / fb)
    return ma - mb, math.sqrt(se2), float(nu)


def welch_interval(a, b, level=0.95):
    """``(difference, low, high)``: the Welch t interval of ``mean(a) - mean(b)`` (two or more units a side).

    Example (hand-computed: SE = sqrt(1/3 + 1/3), nu = 4, t_{0.975,4} = 2.7764):

    >>> [round(v, 3) for v in welch_interval([1, 2, 3], [4, 5, 6])]
    [-3.0, -5.267, -0.733]
    """
    diff, se, nu = welch(side(a), side(b))
    half = float(t_quantile((1 + level) / 2, nu)) * se
    return diff, diff - half, diff + half


def min_detectable_difference(se, nu, alpha=0.05, power=0.8):
    """``(t_{1-alpha/2, nu} + t_{power, nu}) * se``: the smallest true difference a two-sided
    level-``alpha`` test detects with probability ``power`` (normal-approximation formula, t quantiles).

    Example:

    >>> round(min_detectable_difference(1.0, 1e6), 2)  # the normal case: 1.96 + 0.84
    2.8
    """
    return float((t_quantile(1 - alpha / 2, nu) + t_quantile(power, nu)) * se)


def holm(pvalues, alpha=0.05):
    """Holm's step-down adjustment of ``pvalues`` (``None`` entries: untested, left out of the family).

    Sorted ascending, the i-th smallest of the ``m`` tested (i from 0) is adjusted to
    ``max over j <= i of min(1, (m - j) p_(j))``; a comparison is resolved when its adjusted p is
    below ``alpha``, which stops at the first sorted p above ``alpha / (m - i)`` (Holm 1979).

    Returns:
        A list in the input order: ``{"p_adjusted", "resolved"}`` per entry (``None`` for an untested one).

    Example:

    >>> [round(h["p_adjusted"], 3) for h in holm([0.01, 0.04, 0.03])]  # 3 x 0.01, then 2 x 0.03, 1 x 0.04
    [0.03, 0.06, 0.06]
    """
    bad = [p for p in pvalues if p is not None and not 0.0 <= p <= 1.0]  # also NaN, which would missort
    if bad:
        raise ValueError(f"p-values must be in [0, 1] (or None: untested). Received: {bad[0]!r}")
    tested = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    out = [None] * len(pvalues)
    m, running = len(tested), 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * float(p)))
        out[i] = {"p_adjusted": running, "resolved": running < alpha}
    return out


def compare(a, b, *, level=0.95, power=0.8, replicates_a=None, replicates_b=None,
            max_enumerations=MAX_ENUMERATIONS, resamples=100_000, seed=0):
    """``mean(a) - mean(b)`` of two groups of units: interval, test, p-value, resolution.

    Args:
        a, b: the units (structure means) of the two groups.
        level: the interval's coverage; the test's level is ``alpha = 1 - level``.
        power: the power at which the minimum detectable difference is computed.
        replicates_a, replicates_b: a single-structure side's trainings (its standard error).
        max_enumerations, resamples, seed: the permutation test's (see :func:`permutation_test`).

    Returns:
        A dict: ``difference``, ``low``, ``high`` (Welch t interval), ``se``, ``df``, ``test``
        (``"permutation"``, ``"welch_t"`` with a single structure on a side, ``None`` when nothing can
        be tested), ``p``, ``p_min`` (the smallest p the test could give), ``exact``,
        ``relabelings``, ``units``, ``replicates`` (of single-structure sides), ``mdd``, ``power``,
        ``alpha``, ``resolved`` (``p < alpha``; ``None`` untested).
    """
    a, b = _values(a, "a"), _values(b, "b")
    alpha = round(1 - level, 12)
    sa, sb = side(a, replicates_a), side(b, replicates_b)
    out = {"difference": sa[0] - sb[0], "low": None, "high": None, "se": None, "df": None, "test": None,
           "p": None, "p_min": None, "exact": None, "relabelings": None, "units": [int(a.size), int(b.size)],
           "replicates": [None if v.size > 1 else (0 if r is None else len(r)) for v, r in
                          ((a, replicates_a), (b, replicates_b))],
           "mdd": None, "power": power, "alpha": alpha, "level": level, "resolved": None}
    if sa[1] is None or sb[1] is None:
        return out  # a single structure without replicate trainings: its accuracy's error is unknown
    diff, se, nu = welch(sa, sb)
    half = float(t_quantile((1 + level) / 2, nu)) * se
    out.update(low=diff - half, high=diff + half, se=se, df=nu,
               mdd=min_detectable_difference(se, nu, alpha, power))
    if a.size >= 2 and b.size >= 2:
        test = permutation_test(a, b, max_enumerations=max_enumerations, resamples=resamples, seed=seed)
        out.update(test="permutation", p=test["p"], p_min=test["p_min"], exact=test["exact"],
                   relabelings=test["relabelings"])
    else:
        p = 1.0 if se == 0 and diff == 0 else 0.0 if se == 0 else float(t_sf2(diff / se, nu))
        out.update(test="welch_t", p=p, p_min=0.0)
    out["resolved"] = bool(out["p"] < alpha)
    return out
