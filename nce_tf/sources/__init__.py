"""Model sources: a model name as the tools and the jobs take it, resolved to what builds it.

A name is a zoo model (``resnet20``, ...: :mod:`nce_tf.models`, pure Keras builders) or
``keras:PATH.keras``, a user's saved model (:mod:`nce_tf.sources.user`, read through the
adapter).  This package sits above ``models``, ``adapter`` and ``search.space``; none of
them imports it, so the zoo knows nothing of user files or of the search.

- :func:`get_spec`, :func:`default_widths`, :func:`width_names`, :func:`check_widths`,
  :func:`build_model`: the zoo's functions, for either kind of name;
- :func:`build_space`: the search space of a name (:mod:`nce_tf.sources.spaces`);
- :func:`source_for`: the data of a run's config, checked against a user's model (:mod:`nce_tf.sources.data`).

Example:

>>> from nce_tf import sources
>>> sources.default_widths("resnet8")
[16, 16, 16, 32, 32, 64, 64]
>>> sources.get_spec("resnet9")
Traceback (most recent call last):
...
nce_tf.errors.UsageError: Unknown model. Received: model='resnet9'. Allowed: resnet20, resnet32, resnet56, vgg16, resnet18, resnet50, resnet8, or keras:PATH.keras (your own model).
"""

import functools

from nce_tf.errors import UsageError
from nce_tf.models import zoo
from nce_tf.sources.spaces import build_space  # resolves names through get_spec when called
from nce_tf.sources.user import PREFIX, is_user_model

MODEL_HELP = f"{', '.join(zoo.MODEL_NAMES)}, or {PREFIX}PATH.keras (your own model)"


def get_spec(name):
    """The spec of ``name``: a zoo :class:`~nce_tf.models.ModelSpec` or a user model's."""
    if is_user_model(name):
        return _user_spec(name)
    if name not in zoo.MODELS:
        raise UsageError(f"Unknown model. Received: model={name!r}. Allowed: {MODEL_HELP}.")
    return zoo.MODELS[name]


@functools.lru_cache(maxsize=16)
def _user_spec(name):
    # One spec per name and process: the file is loaded and adapted once, however many times
    # the tools ask for its widths or build it.
    from nce_tf.sources.user import UserModelSpec

    return UserModelSpec(name)


def default_widths(name):
    """The original network's width list of ``name``."""
    return list(get_spec(name).default_widths())


def width_names(name):
    """Names of the layers that the entries of a width list set, in order."""
    return list(get_spec(name).width_names())


def check_widths(name, widths):
    """A width list for ``name`` checked (integers in ``[1, 2 * original]``), as ints."""
    return zoo.check_spec_widths(get_spec(name), name, widths)


def build_model(name, widths=None, *, policy=None, input_shape=None, num_classes=None, weight_decay=0.0):
    """:func:`nce_tf.models.build_model` for either kind of name."""
    return zoo.build_from_spec(get_spec(name), name, widths, policy=policy, input_shape=input_shape,
                               num_classes=num_classes, weight_decay=weight_decay)


from nce_tf.sources.data import source_for  # noqa: E402  (it calls get_spec: defined above)

__all__ = ["MODEL_HELP", "source_for", "build_model", "build_space", "check_widths", "default_widths", "get_spec",
           "is_user_model", "width_names"]
