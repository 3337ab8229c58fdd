"""NCE's channel expansion rule (Algorithm 1 of the paper, reconstructed in the design notes, 5.2-5.6).

After each search epoch (and, by flag, every N steps), every row ``l`` whose LARGEST live
candidate has probability ``softmax(alpha_l)[K_l - 1] > T`` and ``K_l < 16`` gets one more
candidate, ``C_{K+1} = (K + 1) n / 8``:

- ``alpha_l[K] := alpha_l[K - 1]`` (the new candidate starts as likely as the old largest: the
  last probability drops from ``p`` to ``p / (1 + p)``, the mass on ">= C_K" rises), and the
  architecture optimizer's per-entry state (Adam's first and second moments) is copied with it:
  with zero moments the new entry's first Adam step would be ``(1 - b1) g / sqrt((1 - b2) g^2)``
  = ~16 x the learning rate at TAS's betas (0.5, 0.999), breaking the tie on noise;
- the newly used weight slices are freshly initialised (Kaiming normal, fan-out of the 1X layer,
  as at build time): the row's new filters ``[C_K_old, C_K_new)`` in its conv (and the shortcut
  conv tied to it), and the matching input columns of every consumer (next conv, next block's
  conv and shortcut, the classifier), only beyond the channels any other row feeding that
  consumer already uses; the new candidate's BN starts at gamma 1, beta 0, mean 0, variance 1;
- the weight optimizer's slots of those slices are zeroed (SGD momentum).

**Warm start** (``SuperNet(expansion_init="warm")``, ``--expansion_init=warm``: an ablation).
Started fresh, the new candidate is worse than the one it extends (its BN restarts on the
``C_K`` channels the old widest candidate trained), which can hide the paper's effect.  The
paper says only that "the additional weight parameters are added to that layer (and the search
parameter is also copied)"; TAS has no expansion (its candidates are fixed and all trained from
the start); the design notes (5.3 c, 5.6) reconstruct the PyTorch concatenation as fresh
weights and a fresh BN, naming the BN copy and a function-preserving start as options.  Warm:

- the new candidate's BN on its first ``C_K`` channels is the old widest candidate's (gamma,
  beta, running mean and variance, and the weight optimizer's slots of gamma and beta);
- its new channels leave the layer at exactly zero: their BN gamma and beta start at 0 (mean 0,
  variance 1), so ``BN(y) = 0`` whatever the new filters (Kaiming, as fresh) compute and in
  training and inference alike; a producer without BN (a conv without one, a hidden dense row)
  starts its new filters and bias at 0 instead (exact with float weights; a zero-free weight
  grid quantizes them to ``+a/3``, so there the new channels start nonzero);
- consumers' new input columns are drawn as fresh: they read zeros, so they change nothing, and
  being random they pass a gradient back to the new gamma (``dL/dgamma_c = sum g_c x_hat_c``,
  as zero-gamma ResNet blocks start; PACT's gradient at 0 is 1, and in a search pair the
  narrower partner's CWI fills the new channels anyway; with ``pair_merge="pad"`` it leaves them at zero,
  so behind a ReLU (gradient 0 at 0) the new channels get no gradient and never switch on: measured,
  README "The same measurements with a merge that does not favour the wider").

So right after the expansion the new candidate's sub-network computes exactly what the old
widest one's did (``forward(x, net.subnet_sample(widths))``, float weights).  Zero consumer
columns instead of zero BN would not do it: a zero-free weight grid (SAWB, DoReFa) quantizes a
zero column to ``+a/3``, so quantized consumers would read the new channels at full weight; a
consumer reading a residual add whose other rows already use those channels keeps its columns
(only columns beyond them are new), so only zeros at the source leave that sum unchanged; and a
depthwise conv or BN between producer and consumer (channel by channel) would carry zeros with
zero gradients on both sides.  What stays inexact: a per-tensor weight quantizer's scale
(SAWB's clip) of the expanded layer now also sees the new filters, and each consumer's the new
input columns, as the derived network at the new width does; and a pair sample mixing the new
candidate with a narrower one is not the old pair (CWI spreads the narrower candidate's
channels over the new ``C*``, TAS's merge), so warm preserves each candidate's own function,
not the pair mixture.

A row's candidates are distinct widths (:mod:`nce_tf.search.candidates`), so the threshold sees
the widest width's whole probability and every expansion adds channels.

No row ever exceeds 16 candidates (2X).  Everything happens eagerly between steps, on
variables read in-graph, so the compiled step does not change.

Example:

>>> import numpy as np
>>> from nce_tf.search.expansion import rows_to_expand
>>> probs = np.full((2, 16), 0.0); probs[:, :8] = 1 / 8; probs[0, :8] = [.1] * 7 + [.3]
>>> rows_to_expand(probs, np.array([8, 8]), threshold=0.25, k_max=16)
[0]
"""

import numpy as np

from nce_tf import mixed_precision
from nce_tf.errors import UsageError


def check_threshold(row_names, num_candidates, k_max, threshold):
    """Refuses a threshold at or below the uniform probability ``1 / K`` of a row that can still grow.

    A row starting with ``K`` candidates gives its widest ``1 / K`` before any search step; at or
    above T it expands at the first check whatever the search prefers, and again at the next. The
    paper sets T above the uniform probability (its 8 candidates: ``1/8``); a coarse grid (``--lane``,
    ``--width_ratios``) starts some rows with fewer.

    Args:
        row_names: the rows' names (for the error).
        num_candidates: each row's live candidates now.
        k_max: the cap of every row, or one cap per row (a row at its cap never expands).
        threshold: T.

    Raises:
        UsageError: one line naming the row with the fewest candidates and the threshold allowed.
    """
    k = np.asarray(num_candidates)
    caps = np.broadcast_to(np.asarray(k_max), k.shape)
    growing = [r for r in range(len(k)) if k[r] < caps[r]]
    if not growing:
        return
    fewest = min(growing, key=lambda r: k[r])
    if threshold <= 1.0 / k[fewest]:
        raise UsageError(
            f"Invalid threshold for this grid: row {row_names[fewest]!r} starts with {int(k[fewest])} candidate(s), "
            f"so its widest starts at probability {1.0 / k[fewest]:.3g} and would expand at the first check whatever "
            f"the search prefers. Received: threshold={threshold}. Allowed: above {1.0 / k[fewest]:.3g}, or a grid "
            f"with more candidates per row (--lane, --width_ratios).")


def rows_to_expand(probs, num_candidates, threshold, k_max):
    """Rows whose largest live candidate's probability exceeds ``threshold`` and that can still grow.

    ``k_max`` is the cap of every row, or one cap per row (a pinned row's cap is 1).
    """
    probs, num_candidates = np.asarray(probs), np.asarray(num_candidates)
    caps = np.broadcast_to(np.asarray(k_max), num_candidates.shape)
    return [l for l, k in enumerate(num_candidates) if k < caps[l] and probs[l, k - 1] > threshold]


def _slots(optimizer, index):
    """Optimizer slot variables of the ``index``-th variable it was built with.

    Keras 3's ``SGD`` keeps its momentum buffers in the public list ``momentums``, aligned
    with the variables passed to ``build`` (pinned by ``tests/test_search.py``).
    """
    optimizer = mixed_precision.inner(optimizer)  # a loss-scale optimizer's slots are its inner optimizer's
    return [getattr(optimizer, name)[index] for name in ("momentums",) if getattr(optimizer, name, None)]


def _arch_slots(optimizer, alpha):
    """The optimizer's per-entry state of ``alpha`` (Adam: momentum and velocity).

    The architecture optimizer is built on ``alpha`` alone (``SuperNet.configure_optimizers``),
    so every variable of its public ``variables`` list shaped like ``alpha`` is per-entry state
    (pinned by ``tests/test_search.py``).
    """
    if optimizer is None:
        return []
    return [v for v in optimizer.variables if tuple(v.shape) == tuple(alpha.shape)]


class _Fresh:
    """Re-initialises regions of variables and zeroes the weight optimizer's slots of them."""

    def __init__(self, rng, slots):
        self.rng, self.slots = rng, slots

    def reinit(self, var, region, stddev):
        """Kaiming-normal values (``stddev``) in ``region``, or zeros for ``stddev=0``."""
        value = var.numpy()
        value[region] = self.rng.normal(0.0, stddev, size=value[region].shape) if stddev else 0.0
        var.assign(value)
        self._zero_slots(var, region)

    def reset(self, var, region, fill, slots=True):
        value = var.numpy()
        value[region] = fill
        var.assign(value)
        if slots:
            self._zero_slots(var, region)

    def bn(self, layer, region, gamma=1.0):
        """BN parameters and statistics of ``region`` back to their initial values (gamma 1, beta 0, N(0, 1));
        ``gamma=0``: the channels output exactly 0 (warm start)."""
        for var, fill in ((layer.gamma, gamma), (layer.beta, 0.0)):
            self.reset(var, region, fill)
        for var, fill in ((layer.moving_mean, 0.0), (layer.moving_variance, 1.0)):
            self.reset(var, region, fill, slots=False)

    def warm_bn(self, layer, old, new, width):
        """Candidate ``new``'s BN: candidate ``old``'s on the first ``width`` channels (with the weight
        optimizer's slots of gamma and beta), gamma and beta 0 beyond (warm start)."""
        for var in (layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance):
            for target in (var, *self.slots(var)):
                value = target.numpy()
                value[new, :width] = value[old, :width]
                target.assign(value)
        self.bn(layer, np.s_[new, width:], gamma=0.0)

    def _zero_slots(self, var, region):
        for slot in self.slots(var):
            s = slot.numpy()
            s[region] = 0.0
            slot.assign(s)


def expand(net, threshold, seed=0, step=0):
    """Applies one expansion check to ``net`` (a :class:`~nce_tf.search.supernet.SuperNet`).

    Args:
        net: the super-net; its ``weight_optimizer`` (if configured) gets its slots zeroed, its
            ``expansion_init`` (``"fresh"`` when absent) chooses the start (module doc).
        threshold: T.
        seed, step: make the fresh initialisation reproducible (``step`` = the global step).

    Returns:
        The list of expanded rows.
    """
    k = net.num_candidates.numpy().copy()
    rows = rows_to_expand(net.probs().numpy(), k, threshold, net.k_caps)
    if not rows:
        return []
    table = net.table_np
    old_live = table[np.arange(len(k)), k - 1].copy()
    alpha = net.alpha.numpy()
    for l in rows:
        alpha[l, k[l]] = alpha[l, k[l] - 1]
        k[l] += 1
    new_live = table[np.arange(len(k)), k - 1]
    net.alpha.assign(alpha)
    net.num_candidates.assign(k)
    for slot in _arch_slots(getattr(net, "arch_optimizer", None), net.alpha):
        value = slot.numpy()
        for l in rows:
            value[l, k[l] - 1] = value[l, k[l] - 2]
        slot.assign(value)

    optimizer = getattr(net, "weight_optimizer", None)
    index = {id(v): i for i, v in enumerate(net.weight_variables)}
    slots = lambda v: _slots(optimizer, index[id(v)]) if optimizer is not None and id(v) in index else []  # noqa: E731
    fresh = _Fresh(np.random.default_rng([int(seed), int(step), len(rows)]), slots)
    warm = getattr(net, "expansion_init", "fresh") == "warm"
    for l in rows:
        lo, hi = int(old_live[l]), int(new_live[l])
        j = int(k[l]) - 1
        for layer in net.producers(l):
            use_bn = getattr(layer, "use_bn", False)
            if hi > lo:
                # Warm without a BN: zero filters are what makes the new channels 0 (module doc).
                fresh.reinit(layer.kernel, np.s_[..., lo:hi], 0.0 if warm and not use_bn else layer.init_stddev)
                if getattr(layer, "bias", None) is not None:
                    fresh.reset(layer.bias, np.s_[lo:hi], 0.0)
            if use_bn and warm:
                fresh.warm_bn(layer, j - 1, j, lo)
            elif use_bn:
                fresh.bn(layer, np.s_[j, :])
    expanded = set(rows)
    for op, layer, (segments, total, spatial) in net.consumers():
        for offset, carried in segments:
            if not carried & expanded:
                continue
            lo = offset + max(int(old_live[r]) for r in carried)
            hi = offset + max(int(new_live[r]) for r in carried)
            if hi > lo:
                op.reset_inputs(layer, lo, hi, total, spatial, fresh)
    return rows
