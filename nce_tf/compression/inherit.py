"""The compressed network at chosen widths: weights inherited from the trained one, BN re-estimated.

1. **Inherit** (:func:`inherited_model`).  The trained network is read into a super-net of its own
   adapted space (:func:`nce_tf.adapt`; :func:`~nce_tf.adapter.from_trained.load_trained_weights`:
   each row's channels ordered most important first by the L1 score, rows added index by index at a
   residual add sharing one order), and the derived network at the chosen widths takes the super-net's
   leading channels (:func:`nce_tf.derive_model` with ``inherit=True``): every layer keeps its
   largest-L1 filters and its consumers the matching input columns.  Where a residual add's identity
   input gets a projection (its width differs from the add's main branch), the 1x1 projection starts
   as the super-net's add does: output channel ``k`` is input channel ``k`` (both in the shared
   order), its BN the identity and frozen (so steps 3 and the fine-tuning keep it the identity), so
   the network computes exactly the trained one with the dropped channels' contributions removed
   (tested in float).  Rows wider than the trained network (a search
   may widen a layer) keep fresh filters that start without effect yet train (rule 3 of
   :mod:`~nce_tf.adapter.from_trained`: BN gamma = beta = 0 behind PACT, zero consumer columns
   behind a ReLU).
2. **PACT clips** (``pact_init="stats"``, quantized activations): set from activation statistics
   (:func:`nce_tf.train.float_init.calibrate_pact`) with BN normalising by batch statistics, as
   the re-estimation of step 3 will make its moving statistics: the inherited moving statistics
   describe the trained network's widths, not these; a quantized checkpoint's own clips are
   inherited otherwise.
3. **BN re-estimation** (:func:`reestimate_bn`): a narrower layer's consumers see other sums than
   the trained ones did, so every BatchNormalization's moving mean and variance are replaced by the
   mean of its batch statistics over a few training batches (training-mode forwards at momentum 0),
   as one-shot NAS recalibrates a sub-network.

``scratch`` networks are the same Keras graph at the same widths, freshly initialised
(:func:`scratch_model`).

Example::

    model = inherited_model(trained, space_widths, policy)
    reestimate_bn(model, [x for x, _ in train_batches.take(20)])
"""

import numpy as np

from nce_tf.adapter import adapt, derive_model
from nce_tf.adapter.from_trained import load_trained_weights
from nce_tf.search.ops import Add
from nce_tf.train.float_init import calibrate_pact, identity_bn


def supernet_of(trained, policy, lane=1, width_ratios="nce"):
    """The super-net of ``trained``'s adapted space under ``policy``, holding its weights (L1 order), on the
    search's width grid (``lane``, ``width_ratios``: the widths a search derives must be its candidates)."""
    net = adapt(trained, policy=policy, lane=lane, width_ratios=width_ratios)
    load_trained_weights(net, trained, received=f"trained={trained.name!r}")
    return net


def inherited_model(trained, widths, policy, weight_decay=None, net=None):
    """The derived network of ``trained`` at ``widths``, its weights inherited (module doc, step 1).

    Args:
        trained: the trained Keras model.
        widths: one width per row of its adapted space.
        policy: the :class:`~nce_tf.models.QuantPolicy` of the compressed network.
        weight_decay: coupled L2 of its kernels (``None``: the trained model's regularizers).
        net: the super-net of :func:`supernet_of` (made here if not given).
    """
    net = net or supernet_of(trained, policy)
    model = derive_model(net, widths, inherit=True, policy=policy, weight_decay=weight_decay, name=trained.name)
    init_projections(model, net.space)
    return model


def scratch_model(trained, widths, policy, weight_decay=None):
    """The derived network of ``trained`` at ``widths``, freshly initialised (``method="scratch"``)."""
    return derive_model(adapt(trained, policy=policy), widths, policy=policy, weight_decay=weight_decay,
                        name=trained.name)


def init_projections(model, space):
    """Each projection the derived network inserted at a residual add starts as the super-net's add:
    channel ``k`` to channel ``k`` (1x1 kernel of ones on the diagonal), BN the identity, frozen.

    Frozen (``trainable = False``: Keras runs such a BN in inference mode, ``training=True`` or not),
    so the identity holds through the BN re-estimation and the fine-tuning; a trainable one is
    re-estimated to the shortcut's own statistics and, with gamma 1 and beta 0, standardised the
    residual stream (a review measured a shortcut of mean 0.40 and std 0.59 turned into mean 0, std 1).
    The 1x1 kernel still trains; the BN's constant scale folds into it on export."""
    refs = {r.name: r for r in space.source["refs"]}
    for node in space.nodes:
        if not isinstance(node.kind, Add):
            continue
        for k in range(len(refs[node.layer].inputs)):
            try:
                conv = model.get_layer(f"{node.layer}_proj{k}")
            except ValueError:
                continue  # this input has the add's width: no projection
            kernel = np.zeros(conv.kernel.shape, "float32")
            c_in, c_out = kernel.shape[-2:]
            kernel[0, 0, np.arange(min(c_in, c_out)), np.arange(min(c_in, c_out))] = 1.0
            conv.kernel.assign(kernel)
            bn = model.get_layer(f"{node.layer}_proj{k}_bn")
            identity_bn(bn)
            bn.trainable = False


def calibrate_clips(model, images, seed=0):
    """PACT clips of least squared error from ``images`` (module doc, step 2); ``{}`` without PACT.
    BN's moving statistics move with the training-mode forwards: re-estimate them after."""
    if not any(getattr(layer, "alpha", None) is not None for layer in model.layers):
        return {}
    return calibrate_pact(model, images, seed=seed, training=True)


def reestimate_bn(model, images):
    """Every BatchNormalization's moving mean and variance := the mean of its batch statistics over
    ``images`` (a list of input batches), read in training mode at momentum 0 (module doc, step 3).

    Returns:
        The number of BN layers re-estimated.
    """
    # Duck-typed (moving statistics and a momentum): only the op registry tests Keras layer classes.
    stats = ("moving_mean", "moving_variance", "momentum")
    layers = [layer for layer in model.layers if all(hasattr(layer, a) for a in stats)]
    if not layers or not images:
        return 0
    saved = [layer.momentum for layer in layers]
    sums = [[np.zeros(layer.moving_mean.shape, "float64"), np.zeros(layer.moving_variance.shape, "float64")]
            for layer in layers]
    try:
        for layer in layers:
            layer.momentum = 0.0  # each forward leaves exactly its batch's statistics
        for x in images:
            model(x, training=True)
            for acc, layer in zip(sums, layers):
                acc[0] += layer.moving_mean.numpy()
                acc[1] += layer.moving_variance.numpy()
    finally:
        for layer, m in zip(layers, saved):
            layer.momentum = m
    for acc, layer in zip(sums, layers):
        layer.moving_mean.assign((acc[0] / len(images)).astype("float32"))
        layer.moving_variance.assign((acc[1] / len(images)).astype("float32"))
    return len(layers)
