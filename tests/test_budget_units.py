"""Budget units (nce_tf/search/units/) against figures worked out apart from them.

- every unit's exact cost of a width list against the Keras count of the derived network
  (``nce_tf.cost.count_model``), on ResNet-8 and on a small adapted network;
- every unit's expected cost, for probability states where a few rows are uncertain, against the
  expectation by enumeration: the sum over the uncertain rows' joint widths of their probability
  times the Keras count of that network (rows are independent);
- the total constraint loss against TAS's rule written out by hand from the bands the settings give;
- a unit registered in this file alone (kernel weights) counted, budgeted, logged and recorded
  through a real search step.
"""

import functools
import itertools

import keras
import numpy as np
import pytest

from nce_tf import cost, models
from nce_tf.adapter.derived_model import build_derived
from nce_tf.adapter.graph import read_graph
from nce_tf.adapter.space import build_adapted_space
from nce_tf.jobs.search_log import SearchLog
from nce_tf.models import QuantPolicy
from nce_tf.search import SearchConfig, SuperNet
from nce_tf.search.callbacks import ChannelExpansion
from nce_tf.search.derive import arch_record
from nce_tf.search.units import UNITS, Budget, Coefficients, Unit, UnitBudget, register_unit
from nce_tf.sources import build_space

W2A2 = QuantPolicy(w_bits=2, a_bits=2)
L = keras.layers
NAMES = ("macs", "params", "memory_bytes", "bops")


def _tiny_space():
    """A stem, a residual block whose add projects when widths differ, a depthwise conv, a dense head."""
    i = keras.Input((8, 8, 3), name="image")
    x = L.ReLU(name="stem_relu")(L.BatchNormalization(name="stem_bn")(L.Conv2D(8, 3, use_bias=False, name="stem")(i)))
    y = L.ReLU(name="a_relu")(L.BatchNormalization(name="a_bn")(L.Conv2D(8, 3, padding="same", use_bias=False,
                                                                            name="a")(x)))
    y = L.BatchNormalization(name="b_bn")(L.Conv2D(8, 3, padding="same", use_bias=False, name="b")(y))
    x = L.ReLU(name="add_relu")(L.Add(name="add")([x, y]))
    x = L.ReLU(name="dw_relu")(L.BatchNormalization(name="dw_bn")(L.DepthwiseConv2D(3, use_bias=False, name="dw")(x)))
    model = keras.Model(i, L.Dense(10, name="logits")(L.GlobalAveragePooling2D()(x)), name="tiny")
    return build_adapted_space(read_graph(model), num_classes=10, input_shape=(8, 8, 3), name="tiny")


@functools.cache
def _space(name):
    """One space per name for the whole module: building ResNet-8's takes a second, and no test (nor
    the budgets and super-nets built on it) changes a space."""
    return _tiny_space() if name == "tiny" else build_space(name)


@functools.cache
def _counted(space, widths):
    built = (build_derived(space, widths, W2A2, None, "derived") if space.source is not None
             else models.build_model(space.model, widths, policy=W2A2))
    counted = cost.count_model(built, 8)  # float (first/last) layers at 8 bits, as the budgets count them
    return {name: getattr(counted, name) for name in NAMES}, built


def _keras_counts(space, widths):
    """``{unit: cost}`` of the derived Keras network with ``widths``, by nce_tf.cost's count, and that
    network.  Each network is built and counted once per module (the enumerations and the originals
    repeat width lists); callers get their own copy of the counts and only read the network."""
    counted, built = _counted(space, tuple(int(w) for w in widths))
    return dict(counted), built


def _all_units_budget(space, **settings):
    return Budget.from_config(space, SearchConfig(**settings), W2A2)


@pytest.mark.parametrize("name", ["resnet8", "tiny"])
def test_each_unit_exact_cost_is_the_keras_count(name):
    space = _space(name)
    budget = _all_units_budget(space)
    rng = np.random.default_rng(3)
    uneven = [int(space.candidates[r, j]) for r, j in enumerate(rng.integers(0, 16, len(space.rows)))]
    for widths in (space.default_widths(), uneven):
        counted, _ = _keras_counts(space, widths)
        assert budget.costs(space, widths) == counted, widths
        # arch.json records each unit's cost, the original's and the ratio of the two
        record = arch_record(space, widths, policy=W2A2, budget=budget, settings={})
        original, _ = _keras_counts(space, space.default_widths())
        for unit in budget.units:
            n = unit.name
            assert (record[n], record[f"original_{n}"]) == (counted[n], original[n])
            assert record[unit.ratio_key] == pytest.approx(counted[n] / original[n], rel=1e-15)


def _set_probs(net, probs_of_rows, base):
    """Sets ``net``'s probabilities one-hot on ``base`` except the rows of ``probs_of_rows``
    (``{row: {width: p}}``); returns them as the cost model reads them.  Every alpha entry is
    assigned, so one net serves several states as a fresh one would."""
    table = net.table_np
    alpha = np.full(table.shape, -1e4, "float32")  # exp underflows to exactly 0: a one-hot row
    for r, w in enumerate(base):
        alpha[r, list(table[r]).index(w)] = 0.0
    for r, dist in probs_of_rows.items():
        alpha[r] = -1e4
        for w, p in dist.items():
            alpha[r, list(table[r]).index(w)] = np.log(p)
    net.alpha.assign(alpha)
    return net.probs().numpy().astype("float64")


def _expected_by_enumeration(space, table, probs, base, rows):
    """Sum over the uncertain rows' joint widths of P(widths) x the Keras count of that network."""
    total = dict.fromkeys(NAMES, 0.0)
    choices = [[(int(table[r, j]), probs[r, j]) for j in np.flatnonzero(probs[r] > 0)] for r in rows]
    for combo in itertools.product(*choices):
        widths = list(base)
        weight = 1.0
        for r, (w, p) in zip(rows, combo):
            widths[r], weight = w, weight * p
        counted, _ = _keras_counts(space, widths)
        for n in NAMES:
            total[n] += weight * counted[n]
    return total


# Per space: a base architecture (the argmax's widths off the uncertain rows) and two probability
# states.  ResNet-8's rows 0 and 2 meet at an add whose projection exists only when their widths
# differ: both uncertain over widths they share.  The tiny network's stem (row 0) is pinned at 8 and
# its add projects whenever row 2 is not 8.
STATES = {
    "resnet8": ([12, 16, 14, 28, 32, 56, 64],
                [{0: {12: 0.5, 14: 0.3, 16: 0.2}, 2: {12: 0.25, 14: 0.6, 16: 0.15}},
                 {3: {28: 0.7, 32: 0.3}, 4: {24: 0.4, 32: 0.6}, 6: {48: 0.1, 64: 0.9}}]),
    "tiny": ([8, 7, 6], [{1: {6: 0.5, 8: 0.5}, 2: {6: 0.3, 7: 0.3, 8: 0.4}}, {1: {3: 0.8, 8: 0.2}}]),
}


def _loss_by_hand(settings, original, argmax, expected):
    """TAS's constraint per unit (-log E below the band, +log E above it), bands from the settings."""
    f, p = settings["flops_ratio"] * original["macs"], settings["params_ratio"] * original["params"]
    t_m, t_b = float(settings["memory_bytes"]), float(settings["bops_ratio"]) * original["bops"]
    bands = {"macs": (f - settings["tolerance"] * original["macs"], f + settings["tolerance_above"] * original["macs"]),
             "params": (0.0, p), "memory_bytes": ((1 - settings["memory_tolerance"]) * t_m, t_m),
             "bops": ((1 - settings["bops_tolerance"]) * t_b, t_b)}
    lambdas = {"macs": settings["lambda_flops"], "params": settings["lambda_params"],
               "memory_bytes": settings["lambda_memory"], "bops": settings["lambda_bops"]}
    loss, sides = 0.0, {}
    for n, (lo, hi) in bands.items():
        sides[n] = -1 if argmax[n] < lo else (1 if argmax[n] > hi else 0)
        loss += lambdas[n] * sides[n] * np.log(expected[n])
    return loss, sides, bands


@pytest.mark.parametrize("name", ["resnet8", "tiny"])
def test_expected_costs_and_the_constraint_loss_against_enumeration(name):
    space = _space(name)
    base, states = STATES[name]
    original, _ = _keras_counts(space, space.default_widths())
    argmax_cost, _ = _keras_counts(space, base)
    # Settings that put the units on different sides of their bands at the base architecture.
    settings = dict(flops_ratio=1.3, tolerance=0.05, tolerance_above=0.06, params_ratio=0.7, lambda_flops=2.0,
                    lambda_params=3.0, memory_bytes=str(int(argmax_cost["memory_bytes"] * 1.02)),
                    memory_tolerance=0.1, bops_ratio="0.5", bops_tolerance=0.2, lambda_memory=1.5, lambda_bops=0.5)
    budget = _all_units_budget(space, **settings)
    net = SuperNet(space, policy=W2A2, seed=0, budget=budget)  # one per space: its eager build takes seconds
    sides = None
    for state in states:
        probs = _set_probs(net, state, base)
        # the argmax of an uncertain row is its most probable width
        argmax = [max(state[r], key=state[r].get) if r in state else w for r, w in enumerate(base)]
        assert [int(w) for w in net.argmax_widths().numpy()] == argmax
        argmax_cost, _ = _keras_counts(space, argmax)
        expected = _expected_by_enumeration(space, net.table_np, probs, base, sorted(state))
        terms = {k: float(v) for k, v in net.cost_terms().items()}
        # float32 softmax probabilities sum to 1 within ~1e-7, and the cost model (like any linear
        # formula) weighs the other rows' terms by that sum, the enumeration by 1: rel 2e-7.  A missing
        # projection term, or E[C_i] E[C_o] where the projection needs E[C_i C_o 1(C_i != C_o)],
        # moves these costs by 1e-4 to 1e-2.
        for n in NAMES:
            assert terms[f"expected_{n}"] == pytest.approx(expected[n], rel=2e-7), n
            assert terms[f"argmax_{n}"] == pytest.approx(argmax_cost[n], rel=1e-12), n
        loss, sides, bands = _loss_by_hand(settings, original, argmax_cost, expected)
        assert terms["cost_loss"] == pytest.approx(loss, rel=2e-7)
        for n in NAMES:
            assert budget.limits(n) == pytest.approx(bands[n], rel=1e-15), n
    assert set(sides.values()) >= {-1, 1}  # the last state has a unit pushed each way


def test_no_budget_limits_nothing_and_logs_only_macs_and_params():
    space = _space("resnet8")
    budget = _all_units_budget(space, flops_ratio=0, params_ratio=0)
    assert [e.name for e in budget.entries] == ["macs", "params"] and budget.constrained == ()
    assert [u.name for u in budget.units] == list(NAMES)  # still counted for arch.json
    net = SuperNet(space, policy=W2A2, seed=0, budget=budget)
    terms = net.cost_terms()
    assert float(terms["cost_loss"]) == 0.0
    assert sorted(terms) == ["argmax_macs", "argmax_params", "cost_loss", "expected_macs", "expected_params"]
    assert budget.fits({}) and budget.violation({}) == 0


def test_the_short_form_is_macs_and_params_at_the_default_settings():
    space = _space("resnet8")
    macs, params = space.exact_cost(space.default_widths())
    short = Budget((macs, params))  # the README's example
    assert (short.limits("macs"), short.limits("params")) == ((macs - 0.05 * macs, macs + 0.06 * macs), (0.0, params))
    assert short.to_dict() == Budget.from_config(space, SearchConfig()).to_dict()


# ------------------------------------------------------------------ a unit added in a test


class KernelWeights(Unit):
    """Conv, depthwise and dense kernel weights (no BN, no bias), with a ceiling at half the original's."""

    name, ratio_key, label = "kernel_weights", "kernel_weights_ratio", "kernel weights"
    scale, suffix, digits = 1e3, "k", 1

    def terms(self, space):
        t = space.terms
        ints = lambda v: np.array(list(v), "int64")  # noqa: E731
        return Coefficients(ints(p for _, _, _, p, _, _ in t.bi), ints(k for _, _, _, k, _, _ in t.lin),
                            ints(1 for _ in t.proj), ints(0 for _ in t.proj), 0)

    def budget(self, config, original):
        return UnitBudget(self, original, 0.5 * original, 0.0, 0.5 * original, 4.0, "kernel_weights <= 0.5x")


@pytest.fixture
def kernel_weights_unit():
    register_unit(KernelWeights)
    yield KernelWeights
    UNITS.pop(KernelWeights.name)


def _kernels_of(model):
    return sum(int(np.prod(w.shape)) for layer in model.layers for w in layer.weights
               if w.path.rsplit("/", 1)[-1] in ("kernel", "depthwise_kernel"))


@pytest.mark.heavy  # a ResNet-8 train step traced: 20-30 s under load
def test_a_unit_registered_in_a_test_is_counted_budgeted_logged_and_recorded(kernel_weights_unit, tmp_path):
    space = _space("resnet8")
    budget = _all_units_budget(space, flops_ratio=0, params_ratio=0)
    assert [e.name for e in budget.constrained] == ["kernel_weights"]
    for widths in (space.default_widths(), [12, 16, 14, 28, 32, 56, 64]):
        assert budget.costs(space, widths)["kernel_weights"] == _kernels_of(_keras_counts(space, widths)[1])
    net = SuperNet(space, policy=W2A2, seed=0, budget=budget)
    net.configure_optimizers(keras.optimizers.SGD(0.01), keras.optimizers.Adam(0.01))
    net.set_arch_updates(True)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 32, 32, 3)).astype("float32"), rng.integers(0, 10, 8)
    alpha = np.zeros(net.alpha.shape, "float32")
    alpha[:, 7] = 1.0  # the argmax at 1X
    net.alpha.assign(alpha)
    before = net.cost_terms()
    net.train_on_batch((x, y), (x, y))
    # The 1X argmax is above the ceiling: +4 log E[kernel weights], whose gradient lowers wide candidates.
    assert float(before["cost_loss"]) == pytest.approx(4.0 * np.log(float(before["expected_kernel_weights"])))
    log = SearchLog(ChannelExpansion(0.3), str(tmp_path / "log.jsonl"), total_epochs=1, verbose=False)
    log.set_model(net)
    record = log.record(0, {})
    assert record["cost_active"] == {"kernel_weights": {"down": 1.0, "up": 0.0}}
    cost_part = np.array(record["alpha_grad_cost"])
    assert (np.diff(cost_part, axis=1) > 0).all()  # d/d alpha of log E[weights]: larger for wider candidates
    assert (net.alpha.numpy()[:, 7] < alpha[:, 7]).all()  # the step moved the 1X candidates down
    assert record["target_kernel_weights"] == 0.5 * budget.entry("kernel_weights").original
    assert {"expected_kernel_weights", "argmax_kernel_weights"} <= set(record)
    assert "kernel weights E " in log.line(record)
    arch = arch_record(space, space.default_widths(), policy=W2A2, budget=budget, settings={})
    assert arch["kernel_weights_ratio"] == 1.0 and not arch["within_budget"]
    assert arch["budget"]["kernel_weights_limits"] == [0.0, arch["budget"]["target_kernel_weights"]]


def test_macs_and_params_give_the_old_hard_wired_budgets_figures():
    # The figures of the Budget hard-wired in supernet.py before issue 27 (c463293), printed by that code for
    # ResNet-20 at --flops_ratio=0.5 --params_ratio=0.6, the default tolerances: the units must keep them.
    space = build_space("resnet20")
    budget = Budget.from_config(space, SearchConfig(flops_ratio=0.5, params_ratio=0.6))
    assert [list(b) for b in budget.bands()] == [["macs", 20406592.0, 18365932.8, 22855383.04],
                                                 ["params", 163484.4, 0.0, 163484.4]]
    mixed = [20, 12, 12, 20, 12, 12, 20, 24, 24, 40, 24, 24, 40, 48, 48, 80, 48, 48, 80]
    for widths, (macs, params, violation) in ((space.default_widths(), (40813184, 272474, 1.5466666666666669)),
                                             (mixed, (34075424, 225022, 0.9262370121289669))):
        costs = budget.costs(space, widths)
        assert (costs["macs"], costs["params"]) == (macs, params)
        assert budget.violation(costs) == pytest.approx(violation, rel=1e-12) and not budget.fits(costs)
