"""Adapt any Keras CNN: a user's functional (or Sequential) model as an NCE search space.

``adapt(model)`` reads the model's graph (:mod:`nce_tf.adapter.graph`), turns it into the
rows-and-nodes search space the zoo models use (:mod:`nce_tf.adapter.space`: every Conv2D and
hidden Dense searchable, depthwise convs following their input, residual adds and
concatenations with the zoo's width rules) and returns a :class:`~nce_tf.search.SuperNet`, which
searches with the same bi-level ``fit``, expansion callbacks and cost constraint as a zoo model.
``derive_model(net)`` gives the plain Keras functional model at the winner-takes-all widths
(QAT layers, fresh weights or inherited ones) that ``model.fit``, ``nce_tf.cost.count_model``
and ``nce_tf.export.export_model`` take.

Supported layers: ``Conv2D``, ``DepthwiseConv2D`` (multiplier 1), ``Dense``,
``BatchNormalization``, ``ReLU`` / ReLU6 / ``Activation`` (sigmoid, swish and their hard versions
kept float), ``Add``, ``Concatenate`` (channels), ``MaxPooling2D``, ``AveragePooling2D``,
``GlobalAveragePooling2D`` (``keepdims`` too), ``GlobalMaxPooling2D``, ``ZeroPadding2D``,
``Flatten``, dropout layers, ``Rescaling`` / ``Normalization`` at the input, squeeze-and-excitation
(``Multiply`` by a conv gate, ``Reshape`` between a vector and a ``(1, 1, C)`` map), MobileNetV3's
hard sigmoid in ``keras.ops``, and nce-tf's own quantized layers (each read by its op:
:func:`nce_tf.search.ops.keras_op`); channels-last, square kernels, one input, a ``Dense``
classifier (or MobileNet's 1x1 conv classifier) as the output: ``keras.applications`` ResNet50,
MobileNetV2, MobileNetV3Small and EfficientNetB0 adapt.  Anything else (a subclassed layer, a
``Reshape`` that depends on a channel count, a layer used at two places, a nested model) is a
one-line ``UsageError`` naming the layer.

Example:

>>> import keras, nce_tf
>>> inputs = keras.Input((32, 32, 3))
>>> x = keras.layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
>>> x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
>>> y = keras.layers.Conv2D(32, 3, padding="same", use_bias=False)(x)
>>> y = keras.layers.ReLU()(keras.layers.BatchNormalization()(y))
>>> outputs = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(y))
>>> net = nce_tf.adapt(keras.Model(inputs, outputs), w_bits=2, a_bits=2)
>>> [r.n for r in net.space.rows], [r.frozen for r in net.space.rows]
([16, 32], [True, False])
>>> nce_tf.derive_model(net).count_params() > 0
True
"""

from nce_tf.adapter.derived_model import build_derived, inherit_weights
from nce_tf.adapter.graph import read_graph
from nce_tf.adapter.space import build_adapted_space
from nce_tf.errors import UsageError
from nce_tf.models import QuantPolicy
from nce_tf.search.config import SearchConfig
from nce_tf.search.derive import derive_widths
from nce_tf.search.supernet import SuperNet
from nce_tf.search.units import Budget


def adapt(model, *, w_bits=2, a_bits=2, policy=None, frozen=(), search_first=False, lane=1, mode="nce",
          tas_space="1x8", flops_ratio=1.0, params_ratio=1.0, tolerance=0.05, lambda_flops=2.0,
          lambda_params=2.0, weight_decay=5e-4, seed=0, tolerance_above=0.06, width_ratios="nce",
          expansion_init="fresh", sawb_scope="pair", max_width_ratio=2.0, pair_merge="cwi"):
    """A searchable super-network of ``model`` (a :class:`~nce_tf.search.SuperNet`).

    Args:
        model: a built Keras 3 functional or Sequential model, image input, ``Dense`` output.
        w_bits, a_bits: bits of weights and activations during the search and in the derived
            network (ignored when ``policy`` is given).
        policy: a :class:`~nce_tf.models.QuantPolicy` (which layers are quantized, quantizers).
        frozen: names of layers whose width is pinned (a tied group is pinned by any member).
        search_first: also search the width of the conv(s) reading the image (pinned by default).
        lane: round candidate widths up to a multiple of this (MAC-array lanes).
        mode, tas_space: as for the zoo search (``nce`` expands; ``tas`` is a fixed space).
        flops_ratio, params_ratio, tolerance, lambda_flops, lambda_params, tolerance_above: the
            cost budget, relative to ``model``'s own MACs and PARAMs (:class:`~nce_tf.search.units.Budget`).
        width_ratios: the width grid up to 1X (``nce``, ``tas`` or a ratio list;
            :mod:`nce_tf.search.candidates`).
        weight_decay: coupled L2 of the super-net's kernels.
        seed: initialisation and Gumbel sampling seed.
        expansion_init, sawb_scope: the search's ablation switches (``fresh`` / ``warm``, ``pair`` /
            ``candidate``; :class:`~nce_tf.search.SuperNet`).
        max_width_ratio: the widest a layer may grow by expansion, as a multiple of its width (2: 2X).
        pair_merge: ``"cwi"`` (TAS) or ``"pad"``: the searchable layers' pair merge (:mod:`nce_tf.search.merge`).

    Returns:
        A ``SuperNet``; call ``configure_optimizers`` and ``fit`` it as in the README.
    """
    refs = read_graph(model)
    units = refs[-1].shape[-1]
    input_shape = refs[0].shape
    if not isinstance(lane, int) or lane < 1:
        raise UsageError(f"Invalid lane width. Received: lane={lane!r}. Allowed: an integer >= 1.")
    space = build_adapted_space(refs, num_classes=int(units), input_shape=input_shape, name=model.name,
                                frozen=frozen, search_first=search_first, lane=lane)
    policy = policy or QuantPolicy(w_bits=w_bits, a_bits=a_bits)
    budget = Budget.from_config(space, SearchConfig(flops_ratio=flops_ratio, params_ratio=params_ratio, tolerance=tolerance,
                                                    lambda_flops=lambda_flops, lambda_params=lambda_params,
                                                    tolerance_above=tolerance_above))
    return SuperNet(space, policy, mode=mode, tas_space=tas_space, budget=budget, weight_decay=weight_decay,
                    seed=seed, width_ratios=width_ratios, expansion_init=expansion_init, sawb_scope=sawb_scope,
                    max_width_ratio=max_width_ratio, pair_merge=pair_merge)


def derive_model(net, widths=None, *, inherit=False, policy=None, weight_decay=None, name=None):
    """The plain Keras model of an adapted super-net at ``widths`` (default: winner-takes-all).

    Args:
        net: a ``SuperNet`` from :func:`adapt`.
        widths: one width per row (default: ``nce_tf.search.derive_widths(net)``).
        inherit: start from the super-net's weights instead of a fresh initialisation.
        policy: quantization of the derived network (default: the search's).
        weight_decay: coupled L2 of its kernels (default: the user's regularizers).
        name: the model's name.
    """
    if getattr(net.space, "source", None) is None:
        raise UsageError(f"derive_model() takes a super-net made by adapt(). Received: the zoo super-net of "
                         f"{net.space.model!r} (build it with nce_tf.models.build_model).")
    widths = derive_widths(net) if widths is None else [int(w) for w in widths]
    if len(widths) != len(net.space.rows):
        raise UsageError(f"Wrong number of widths. Received: {len(widths)} widths. Allowed: {len(net.space.rows)}.")
    model = build_derived(net.space, widths, policy or net.policy, weight_decay, name)
    if inherit:
        inherit_weights(model, net, widths)
    return model


__all__ = ["adapt", "derive_model"]
