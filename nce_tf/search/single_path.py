"""Single-path weight training of a super-net: every step one sub-network, each row at one candidate.

A super-net loaded from a trained network (:mod:`nce_tf.adapter.from_trained`) holds a trained 1X
sub-network and untrained narrower ones: the L1-first filters of a candidate ``C_j < n`` were
trained to work beside the others, not alone.  TAS's weight step samples a Gumbel *pair* per row
from all candidates (a mean width near half of 1X on ResNet-20), and on such a super-net the
sampled networks are at chance: measured on a trained W2A2 ResNet-20 (82% at 1X on a slice of the
architecture half), three Gumbel samples at tau 5 gave 12.5%, 10.0% and 9.6%; searches from there
trained on sub-networks at 12-16% accuracy through their warm-up, whatever the weight learning
rate (0.01, 0.002, 0.0005; results/recipe_from_trained), so the CE part of alpha's gradient read sub-networks at chance, as from
random weights.  Training single paths first teaches the narrower candidates to work while the 1X
one keeps working (3 epochs: 39% on single paths, but the Gumbel pairs, every layer narrow at
once, only reached 16-21%: README "Does quantization make width matter?"):

- each step, every row is at its 1X candidate with probability ``keep``, else at one of its other
  ``options`` drawn uniformly (each candidate's own BN, no interpolation:
  :meth:`~nce_tf.search.supernet.SuperNet.subnet_sample`);
- plain SGD with momentum 0.9 at a small learning rate on the cross-entropy plus the super-net's
  weight regulariser.

The sensitivity probe (:mod:`nce_tf.analysis.sensitivity`) trains its super-net this way, and a
search does so before its warm-up with ``--supernet_epochs`` (0 = TAS / the paper: none).

Example::

    options = [[c for c in live if c != n] for live, n in zip(live_candidates, one_x)]
    train_single_paths(net, lambda epoch: batches_of(epoch), epochs=2, lr=0.002, base=one_x,
                       options=options, seed=0)
"""

import keras
import numpy as np
import tensorflow as tf

from nce_tf import mixed_precision


def random_widths(rng, base, options, keep=0.5):
    """One single-path sub-network: each row at ``base[r]`` with probability ``keep``, else at one of its
    ``options[r]`` uniformly (a row without options stays at ``base[r]``)."""
    return [b if not opts or rng.random() < keep else int(rng.choice(opts)) for b, opts in zip(base, options)]


def sample_spec(net):
    """``TensorSpec`` of a fixed sub-network sample (:meth:`SuperNet.subnet_sample`): widths, index, mix."""
    rows = len(net.space.rows)
    return [tf.TensorSpec([rows, 2], tf.int32), tf.TensorSpec([rows, 2], tf.int32), tf.TensorSpec([rows, 2], tf.float32)]


def train_single_paths(net, batches, epochs, lr, base, options, seed, keep=0.5, verbose=True, label="super-net",
                       global_clipnorm=None):
    """``epochs`` epochs of single-path weight steps (see the module doc).

    Args:
        net: a :class:`~nce_tf.search.supernet.SuperNet`.
        batches: ``batches(epoch)`` returns that epoch's ``(x, y)`` training batches.
        epochs, lr: epochs and the SGD learning rate.
        base: per row, the width drawn with probability ``keep`` (the 1X width).
        options: per row, the other widths a step may give it (live candidates).
        seed: seed of the width draws.
        label: the progress line's name for what is trained.
        global_clipnorm: clip the weight gradients to this global norm (``None``: no clip), as the run's
            training and search steps do (``--global_clipnorm``).

    Returns:
        per epoch, ``{"loss", "accuracy"}`` of the sampled sub-networks on their training batches.
    """
    # Loss scaling under mixed_float16, as the search's own weight step does (nce_tf/mixed_precision.py).
    optimizer = mixed_precision.loss_scaled(keras.optimizers.SGD(lr, momentum=0.9, global_clipnorm=global_clipnorm),
                                            net.dtype_policy.name)
    weights = net.weight_variables
    optimizer.build(weights)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    signature = [tf.TensorSpec([None, *net.space.input_shape], tf.float32), tf.TensorSpec([None], tf.int64),
                 *sample_spec(net)]

    @tf.function(input_signature=signature)
    def step(x, y, w, i, m):
        with tf.GradientTape() as tape:
            logits, reg = net.forward(x, (w, i, m), training=True)
            loss = ce(y, logits)
            total = loss + tf.cast(reg, loss.dtype)
            scaled = optimizer.scale_loss(total)
        optimizer.apply(tape.gradient(scaled, weights), weights)
        hits = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=1), y), tf.float32))
        return loss, hits

    rng = np.random.default_rng([int(seed), 1])
    history = []
    for epoch in range(epochs):
        losses, hits, seen = [], 0.0, 0
        for x, y in batches(epoch):
            loss, correct = step(x, tf.cast(y, tf.int64), *net.subnet_sample(random_widths(rng, base, options, keep)))
            losses.append(float(loss))
            hits, seen = hits + float(correct), seen + int(y.shape[0])
        history.append({"loss": float(np.mean(losses)), "accuracy": hits / max(seen, 1)})
        if verbose:
            print(f"nce-tf: {label} epoch {epoch + 1}/{epochs}: loss {history[-1]['loss']:.3f} accuracy "
                  f"{history[-1]['accuracy']:.3f} (single-path sub-networks)", flush=True)
    return history
