"""Derivation: winner-takes-all widths of a super-net and the ``arch.json`` that records them.

``c_l = C_{l, argmax_j alpha_l,j}`` per row (TAS trains the LAST epoch's genotype; so do we).
The derived network is then built by the zoo's own builders from the width list
(``nce_tf.models.build_model(model, widths)``), randomly initialised, and trained from
scratch with W2A2 QAT by ``tools/train.py --arch=DIR/arch.json``.

The exact cost written into ``arch.json`` is the search space's count of the derived
network, which ``tools/count.py --arch`` reproduces from the built Keras model.
"""

import numpy as np

from nce_tf.errors import UsageError


def derive_widths(net):
    """The argmax width of every row of ``net`` as Python ints."""
    return [int(w) for w in net.argmax_widths().numpy()]


def fit_to_budget(space, table, probs, widths, budget, max_moves=1000):
    """Moves an architecture into the budget's band with the least loss of probability.

    The search's constraint loss steers the argmax into the budget's limits (``Budget.constrained``:
    a MACs band around the target, a PARAMs ceiling, memory and BOPs bands) but gives no guarantee
    at the last step (TAS trains the last argmax whatever it costs).  When ``widths`` is outside the
    limits, this repairs it greedily, pulling only into those hard limits.  The violation ``v``
    sums, over the constrained units, how far the cost lies above its upper limit or below its
    lower one (as fractions of the target: ``Budget.violation``).  Each move sets one row to its most probable candidate of another
    width (``table`` holds the candidates allowed: pass ``candidates.capped(table, k_caps)``);
    the move taken strictly lowers ``v`` and loses the least log-probability per unit of ``v``
    removed.  A row may jump over widths in one move: stepping one width at a time, a row torn
    between 2X and 1X would pay for the improbable widths between them, and a confident row
    would be moved instead (and then walked down for free through its improbable widths).
    Stops at ``v = 0``; returns the widths unchanged when they already fit.

    The moves are first among the candidates the search made live (probability above 0); only when
    no repair among them reaches the band may a row take a candidate it never offered (a budget
    above 1X whose layers did not expand far enough), each such candidate costing ~69 nats.  (With
    both at once, one 69-nat move could beat several smaller ones among confident rows: a review
    found a repair taking a never-live width where the all-1X widths fitted.)
    """
    probs = np.asarray(probs, "float64")
    try:
        return _repair(_Repair(space, table, probs, budget, probs > 0), widths, budget, max_moves)
    except UsageError:
        return _repair(_Repair(space, table, probs, budget, np.ones_like(probs, bool)), widths, budget, max_moves)


def _repair(repair, widths, budget, max_moves):
    widths = list(widths)
    for _ in range(max_moves):
        v = repair.violation(widths)
        if v == 0:
            return widths
        # One row at a time can get stuck between the two costs (e.g. PARAMs under the band while
        # MACs are at the target): then move two rows at once, one of them each way if need be
        # (to their neighbouring widths: pairs of jumps would be quadratic in the candidates too).
        best = repair.best_move(widths, v, ((o,) for o in repair.options(widths)))
        if best is None:
            step = list(repair.options(widths, adjacent=True))
            best = repair.best_move(widths, v, ((a, b) for i, a in enumerate(step) for b in step[i + 1:]
                                                if a[0] != b[0]))
        if best is None:
            break
        widths = best[1]
    raise UsageError(
        f"The derived architecture cannot be moved into the budget band. Received: {budget.describe()}. "
        "Allowed: a wider --tolerance / --tolerance_above (--memory_tolerance, --bops_tolerance), or "
        "--enforce_budget=false to keep the raw argmax.")


class _Repair:
    """The moves :func:`fit_to_budget` chooses from, and what each costs in log-probability."""

    def __init__(self, space, table, probs, budget, allowed):
        self.space, self.table, self.budget = space, table, budget
        # A candidate the search never made live (probability 0) costs ~69 nats where it is allowed.
        self.logp = np.log(np.maximum(probs, 1e-30))
        self.live = np.asarray(allowed, bool)

    def violation(self, w):
        return self.budget.violation(self.budget.costs(self.space, w, constrained=True))

    def moves(self, l, w, adjacent):
        """``(width, log-probability)`` of row ``l``'s other widths (only the neighbours if ``adjacent``)."""
        live, table = self.live[l], self.table[l]
        for pick in (live & (table < w), live & (table > w)):
            if not pick.any():
                continue
            targets = np.unique(table[pick])
            if adjacent:
                targets = targets[-1:] if (targets < w).all() else targets[:1]
            for target in targets:
                yield int(target), self.logp[l, np.flatnonzero(pick & (table == target))].max()

    def options(self, w, adjacent=False):
        """Every single-row move ``(row, width, log-probability lost)`` from widths ``w``."""
        for l, c in enumerate(w):
            cur = np.flatnonzero(self.live[l] & (self.table[l] == c))
            here = self.logp[l, cur].max() if cur.size else 0.0
            for target, there in self.moves(l, c, adjacent):
                yield l, target, max(here - there, 0.0)

    def best_move(self, w, v, combos):
        """``(score, widths)`` of the combination of moves losing the least log-probability per unit of
        violation removed, or None when none lowers the violation ``v``."""
        best = None
        for combo in combos:
            trial = list(w)
            for l, target, _ in combo:
                trial[l] = target
            gain = v - self.violation(trial)
            if gain > 0:
                score = max(sum(c[2] for c in combo), 1e-9) / gain
                if best is None or score < best[0]:
                    best = (score, trial)
        return best


def arch_record(space, widths, *, policy, budget, settings, **extra):
    """What ``arch.json`` records for ``widths`` of ``space`` beyond ``model`` and ``widths``:
    costs (every unit the budget counts: its cost, the original's and their ratio; MACs and PARAMs,
    and weight memory and BOPs with ``float_bits`` when the budget knows the policy), bits and the
    search settings (the search job writes it with ``nce_tf.arch.save_arch``)."""
    costs = budget.costs(space, widths)
    record = {}
    for unit in budget.units:
        record.update(unit.record(space, costs[unit.name]))
    record.update({
        "original_widths": space.default_widths(),
        # The costs above are at this input: count.py --arch and report.md count at it too.
        "input_shape": list(space.input_shape), "num_classes": space.num_classes,
        "w_bits": policy.w_bits, "a_bits": policy.a_bits, "quantization": policy.to_dict(),
        "budget": budget.to_dict(), "within_budget": budget.fits(costs),
        "search": settings, **extra,
    })
    return record
