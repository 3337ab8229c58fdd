"""The model zoo: names, default width lists, and ``build_model``.

Every model is built from a per-layer width list (one output width per searchable conv,
in network order; see :func:`width_names`).  The default list is the original network;
any other list, narrower or up to 2X wider layer by layer, builds the same way.  This is
the contract the search relies on: a derived architecture is just a width list.

Example:

>>> from nce_tf import models
>>> w = models.default_widths("resnet20")
>>> len(w), w[:3]
(19, [16, 16, 16])
>>> w[1] = 32                                     # widen one layer to 2X
>>> m = models.build_model("resnet20", w, policy=models.QuantPolicy(w_bits=2, a_bits=2))
>>> m.get_layer("s1_b0_a_conv").filters
32
"""

import dataclasses
import functools

from nce_tf.errors import UsageError
from nce_tf.models import resnet_cifar, resnet_imagenet, vgg_cifar
from nce_tf.models.policy import QuantPolicy

MAX_EXPANSION = 2  # no layer may be wider than 2X its original width (the NCE cap)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the zoo knows about one model name."""

    name: str
    kind: str  # "cifar" or "imagenet": the data it was designed for
    input_shape: tuple
    num_classes: int
    default_widths: callable
    width_names: callable
    builder: callable


def _cifar_resnet(depth):
    return dict(
        kind="cifar", input_shape=(32, 32, 3), num_classes=10,
        default_widths=functools.partial(resnet_cifar.default_widths, depth),
        width_names=functools.partial(resnet_cifar.width_names, depth),
        builder=functools.partial(resnet_cifar.build, depth),
    )


def _imagenet_resnet(depth):
    return dict(
        kind="imagenet", input_shape=(224, 224, 3), num_classes=1000,
        default_widths=functools.partial(resnet_imagenet.default_widths, depth),
        width_names=functools.partial(resnet_imagenet.width_names, depth),
        builder=functools.partial(resnet_imagenet.build, depth),
    )


MODELS = {
    "resnet20": ModelSpec("resnet20", **_cifar_resnet(20)),
    "resnet32": ModelSpec("resnet32", **_cifar_resnet(32)),
    "resnet56": ModelSpec("resnet56", **_cifar_resnet(56)),
    "vgg16": ModelSpec(
        "vgg16", kind="cifar", input_shape=(32, 32, 3), num_classes=10,
        default_widths=vgg_cifar.default_widths, width_names=vgg_cifar.width_names,
        builder=vgg_cifar.build,
    ),
    "resnet18": ModelSpec("resnet18", **_imagenet_resnet(18)),
    "resnet50": ModelSpec("resnet50", **_imagenet_resnet(50)),
    "resnet8": ModelSpec("resnet8", **_cifar_resnet(8)),
}
MODEL_NAMES = tuple(MODELS)


def get_spec(name):
    """The :class:`ModelSpec` of zoo model ``name``, or a one-line error listing the names.

    Users' own ``keras:PATH.keras`` models are resolved a level up, by :mod:`nce_tf.sources`.
    """
    if name not in MODELS:
        raise UsageError(f"Unknown model. Received: model={name!r}. Allowed: {', '.join(MODEL_NAMES)}.")
    return MODELS[name]


def default_widths(name):
    """The original network's width list of model ``name``."""
    return list(get_spec(name).default_widths())


def width_names(name):
    """Names of the conv layers that the entries of a width list set, in order."""
    return list(get_spec(name).width_names())


def check_widths(name, widths):
    """Validates a width list for ``name``; returns it as a list of ints.

    Each width must be an integer in ``[1, 2 * original]``.
    """
    return check_spec_widths(get_spec(name), name, widths)


def check_spec_widths(spec, name, widths):
    """:func:`check_widths` of a resolved spec (a zoo model's or a user model's)."""
    defaults, names = list(spec.default_widths()), list(spec.width_names())
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__len__"):
        raise UsageError(f"Widths must be a list of integers. Received: widths={widths!r}")
    if len(widths) != len(defaults):
        raise UsageError(
            f"Wrong number of widths for {name}. Received: {len(widths)} widths. "
            f"Expected: {len(defaults)} (one per searchable conv)."
        )
    out = []
    for i, (w, n) in enumerate(zip(widths, defaults)):
        if isinstance(w, bool) or not isinstance(w, int) or not 1 <= w <= MAX_EXPANSION * n:
            raise UsageError(
                f"Invalid width of {name} layer {i} ({names[i]}). Received: {w!r}. "
                f"Allowed: an integer in [1, {MAX_EXPANSION * n}] (original {n}, cap {MAX_EXPANSION}X)."
            )
        out.append(int(w))
    return out


def build_model(name, widths=None, *, policy=None, input_shape=None, num_classes=None,
                weight_decay=0.0):
    """Builds zoo model ``name`` as a Keras functional model.

    Args:
        name: one of ``MODEL_NAMES``.
        widths: per-layer width list (default: the original network).
        policy: a :class:`QuantPolicy` (default: float, W32A32).
        input_shape: ``(H, W, C)``; default the model's dataset (32x32 or 224x224 RGB).
        num_classes: classifier width; default 10 (CIFAR) or 1000 (ImageNet).
        weight_decay: coupled L2 decay of conv and dense kernels.

    Returns:
        An unbuilt-weights-initialised ``keras.Model`` named ``name``.
    """
    return build_from_spec(get_spec(name), name, widths, policy=policy, input_shape=input_shape,
                           num_classes=num_classes, weight_decay=weight_decay)


def build_from_spec(spec, name, widths=None, *, policy=None, input_shape=None, num_classes=None, weight_decay=0.0):
    """:func:`build_model` of a resolved spec (a zoo model's or a user model's)."""
    widths = check_spec_widths(spec, name, list(spec.default_widths()) if widths is None else widths)
    policy = QuantPolicy() if policy is None else policy
    input_shape = tuple(input_shape or spec.input_shape)
    num_classes = int(num_classes or spec.num_classes)
    if num_classes < 2:
        raise UsageError(f"num_classes must be >= 2. Received: num_classes={num_classes}")
    return spec.builder(widths, input_shape, num_classes, policy, weight_decay, name)
