"""The paper's premise as a measurement: which layers does quantization make hungry for width?

NCE's argument (sections 4.1 and 4.3 of the paper) starts from a claim about layers, not searches:
under 2-bit quantization some layers need more channels than in float.  The probe measures it
directly on trained networks of one architecture at two precisions (e.g. W2A2 and W32A32): each
layer's change of test accuracy and cross-entropy when **only that layer** is narrowed or widened
(a grid such as 0.5x, 0.75x, 1.25x, 1.5x), every other layer at 1X.

**One-shot estimator** (:func:`probe`).  Training every one-layer-changed network is too costly for
a grid over every layer, so the probe trains one super-net instead:

1. a :class:`~nce_tf.search.supernet.SuperNet` over the probe's widths (the ratios below 1, 1X,
   and ``(1 + i/8) n`` up to 2X), loaded from the trained network
   (:mod:`nce_tf.adapter.from_trained`: the 1X sub-net *is* the trained network, channels ordered by
   L1 importance, so a narrower candidate keeps the filters that matter most; channels beyond 1X
   start so that a wider sub-net first computes the trained network's function and they still train:
   its rule 3),
   at the trained network's precision;
2. its weights trained ``epochs`` epochs at a small learning rate on **single-path** sub-networks:
   each step, every layer at 1X with probability 1/2, else at one of its probed widths (no pair
   mixing: TAS's channel-wise interpolation of a random pair per layer took a trained ResNet-20
   from 73.7% to 15% training accuracy in one epoch; single paths at lr 0.002 keep its 1X
   sub-net at 73.4% after two epochs);
3. for each sub-network (the 1X reference and each one-layer change): its BN statistics
   re-estimated on augmented training batches (every candidate's running mean and variance
   replaced by the mean of its batch statistics over ``bn_batches`` batches, in training mode, as
   one-shot NAS recalibrates a sub-net), then its accuracy and mean cross-entropy on the test set,
   and the paired counts against the reference: ``n10`` images the reference gets right and the
   sub-net wrong, ``n01`` the reverse (the difference of accuracies is ``(n01 - n10) / N``).

What it can and cannot see: a narrowed layer keeps its most important filters and is measured
after a short recovery; a widened layer's new channels start without effect and train only a
little in a short, gentle fine-tuning, so the estimate of widening is a lower bound (on the
known-answer network, :mod:`nce_tf.analysis.known_answer`: the right layer first, a quarter of
retraining's gain), which is why the estimate is validated against retraining
(:mod:`nce_tf.analysis.ground_truth`).

Residual adds of unequal widths are zero-padded in the super-net (the narrower adds into the
leading channels) where a derived network inserts a projection, so a one-layer change of a tied
row is the super-net's, not the derived network's.

Example:

>>> from nce_tf.analysis.sensitivity import one_layer_widths
>>> one_layer_widths([16, 16, 32], row=2, ratio=0.75)
[16, 16, 24]
"""

import dataclasses

import numpy as np
import tensorflow as tf

from nce_tf import data
from nce_tf.adapter.from_trained import load_trained_weights, pact_clips_from_stats
from nce_tf.analysis.probe_config import ProbeConfig, one_layer_widths  # noqa: F401  (public names here too)
from nce_tf.errors import UsageError
from nce_tf.search.single_path import sample_spec, train_single_paths
from nce_tf.search.supernet import SuperNet
from nce_tf.sources import build_space


def _rows(space, names):
    rows = [i for i, r in enumerate(space.rows) if not r.frozen]
    if not names:
        return rows
    by_name = {space.rows[i].name: i for i in rows}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise UsageError(f"Unknown layer to probe. Received: rows={unknown!r}. Allowed: {sorted(by_name)}.")
    return [by_name[n] for n in names]


class _SubnetRunner:
    """Compiled forwards of the super-net at any fixed sample (one trace each), and BN re-estimation."""

    def __init__(self, net):
        self.net = net
        self.bn_layers = [layer for layer in net.conv_layers + net.other_layers if hasattr(layer, "moving_mean")]
        # One signature, so one trace each whatever the sub-network or the batch size.
        signature = [tf.TensorSpec([None, *net.space.input_shape], tf.float32), *sample_spec(net)]
        self._eval = tf.function(lambda x, w, i, m: net.forward(x, (w, i, m), training=False)[0],
                                 input_signature=signature)
        # Momentum 0 while the training-mode forward traces (the layers read it then): each call
        # leaves exactly its batch's statistics in the candidates it uses.
        saved = [layer.momentum for layer in self.bn_layers]
        for layer in self.bn_layers:
            layer.momentum = 0.0
        self._train = tf.function(lambda x, w, i, m: net.forward(x, (w, i, m), training=True)[0],
                                  input_signature=signature).get_concrete_function()
        for layer, m in zip(self.bn_layers, saved):
            layer.momentum = m

    def reestimate_bn(self, sample, images):
        """Every candidate's running statistics := the mean of its batch statistics over ``images``."""
        sums = [[np.zeros(v.shape, "float64") for v in (layer.moving_mean, layer.moving_variance)]
                for layer in self.bn_layers]
        for x in images:
            self._train(x, *sample)
            for acc, layer in zip(sums, self.bn_layers):
                acc[0] += layer.moving_mean.numpy()
                acc[1] += layer.moving_variance.numpy()
        for acc, layer in zip(sums, self.bn_layers):
            layer.moving_mean.assign(acc[0] / len(images))
            layer.moving_variance.assign(acc[1] / len(images))

    def evaluate(self, sample, test):
        """``(correct [N] bool, cross-entropy [N])`` of the sub-network on ``test`` batches ``(x, y)``."""
        correct, ce = [], []
        for x, y in test:
            logits = self._eval(x, *sample).numpy().astype("float64")
            correct.append(logits.argmax(axis=1) == y)
            logz = logits.max(axis=1) + np.log(np.exp(logits - logits.max(axis=1, keepdims=True)).sum(axis=1))
            ce.append(logz - logits[np.arange(len(y)), y])
        return np.concatenate(correct), np.concatenate(ce)


def train_supernet(net, train, info, config, options, steps=None, verbose=True):
    """Weight steps on single-path sub-networks of the super-net (see the module doc, step 2;
    :func:`nce_tf.search.single_path.train_single_paths`).

    Args:
        net: the super-net, loaded from the trained network.
        train: the training split; info: its :class:`~nce_tf.data.info.DatasetInfo`.
        config: the :class:`ProbeConfig` (epochs, batch size, learning rate, clip, seed).
        options: per row, the widths a sampled sub-network may give it besides the original (empty:
            always the original).
        steps: steps per epoch (default: one pass over the training split).
    """
    if not steps and not info.num_train:
        raise UsageError(f"The size of dataset {info.name!r} is unknown: the probe needs its steps per epoch. "
                         "Received: steps=None.")
    steps = steps or max(1, info.num_train // config.batch_size)
    batches = lambda epoch: data.make_pipeline(train, info, training=True, batch_size=config.batch_size,  # noqa: E731
                                               seed=config.seed, epoch=epoch).take(steps)
    return train_single_paths(net, batches, config.epochs, config.lr, net.space.default_widths(), options,
                              config.seed, verbose=verbose, label="probe super-net",
                              global_clipnorm=config.global_clipnorm or None)


def _probe_net(trained, model, policy, info, config):
    """The super-net of ``model`` over the probed ratios (a fixed TAS space up to 2X) with ``trained``'s weights."""
    space = build_space(model, num_classes=info.num_classes, input_shape=info.image_shape)
    below = sorted(r for r in config.ratios if r < 1)
    net = SuperNet(space, policy, mode="tas", tas_space="2x16", seed=config.seed,
                   width_ratios=",".join(str(r) for r in [*below, 1]))
    load_trained_weights(net, trained, received=f"trained={trained.name!r}")
    return net


def _change(space, r, ratio, widths, measured, reference):
    """One change's entry of the probe's result: row ``r`` at ``widths[r]``, its accuracy and CE against the
    reference's, and the paired counts ``n01`` / ``n10``."""
    (ok, ce), (ref_ok, ref_ce) = measured, reference
    return {"row": r, "layer": space.rows[r].name, "n": space.default_widths()[r], "width": widths[r], "ratio": ratio,
            "accuracy": float(ok.mean()), "ce": float(ce.mean()),
            "delta_accuracy": float(ok.mean() - ref_ok.mean()), "delta_ce": float(ce.mean() - ref_ce.mean()),
            "n01": int((~ref_ok & ok).sum()), "n10": int((ref_ok & ~ok).sum())}


def probe(trained, model, policy, source, config, verbose=True):
    """One-shot per-layer width sensitivity of one trained network (see the module doc).

    Args:
        trained: the trained ``keras.Model`` (same model as ``model``, its original widths).
        model: the model name (zoo or ``keras:PATH``) the search space is built from.
        policy: the :class:`~nce_tf.models.QuantPolicy` the network was trained at.
        source: the data :class:`~nce_tf.data.info.Source` (train and test splits).
        config: a :class:`ProbeConfig`.
        verbose: print one line per super-net epoch and per sub-network.

    Returns:
        ``{"reference": {...}, "changes": [...], "settings": {...}}``: the 1X reference's accuracy
        and mean CE, and per one-layer change its row, layer name, original and probed width, ratio,
        accuracy, mean CE, their differences from the reference and the paired counts ``n01``,
        ``n10`` (reference wrong / right, sub-net right / wrong) on the ``n_test`` test images.
    """
    config.validate()
    info = source.info
    net = _probe_net(trained, model, policy, info, config)
    space = net.space
    rows = _rows(space, config.rows)
    # BN statistics are re-estimated on augmented training batches, as the network saw in training: on a
    # trained ResNet-20 (73.75% with its own statistics) 8 x 256 augmented images give 73.65%, unaugmented 71.1%.
    images = [x for x, _ in data.make_pipeline(source.train, info, training=True, batch_size=config.eval_batch_size,
                                               seed=config.seed, epoch=10_000).take(config.bn_batches)
              .as_numpy_iterator()]
    if config.pact_init == "stats":
        pact_clips_from_stats(net, images[:4], seed=config.seed)
    base = space.default_widths()
    options = [[] if i not in rows else sorted({one_layer_widths(base, i, r)[i] for r in config.ratios})
               for i in range(len(base))]
    train_supernet(net, source.train, info, config, options, verbose=verbose)
    test = list(data.make_pipeline(source.test, info, training=False,
                                   batch_size=config.eval_batch_size).as_numpy_iterator())
    runner = _SubnetRunner(net)

    def measure(widths):
        sample = net.subnet_sample(widths)
        runner.reestimate_bn(sample, images)
        return runner.evaluate(sample, test)

    ref_ok, ref_ce = measure(base)
    out = {"reference": {"accuracy": float(ref_ok.mean()), "ce": float(ref_ce.mean())}, "n_test": int(ref_ok.size),
           "changes": [], "settings": dataclasses.asdict(config)}
    if verbose:
        print(f"nce-tf: probe reference (1X, BN re-estimated): accuracy {ref_ok.mean():.4f}, CE {ref_ce.mean():.4f}",
              flush=True)
    for r in rows:
        for ratio in config.ratios:
            widths = one_layer_widths(base, r, ratio)
            change = _change(space, r, ratio, widths, measure(widths), (ref_ok, ref_ce))
            out["changes"].append(change)
            if verbose:
                print(f"nce-tf: probe {change['layer']} {base[r]} -> {widths[r]} ({ratio}x): accuracy "
                      f"{change['delta_accuracy']:+.4f}, CE {change['delta_ce']:+.4f}", flush=True)
    return out
