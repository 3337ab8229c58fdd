"""The search space of a model name: one graph builder for the zoo and for users' models.

A zoo model's space is what :func:`nce_tf.adapt` makes of the zoo's own 1X Keras network
(``nce_tf.models.build_model(name)``, float), with every conv searched (the stem too, as in
the paper) and ``source`` dropped: a zoo network is derived by the zoo's builder from its
width list, so ``arch.json`` names the model, not a graph.  A ``keras:PATH.keras`` name is
the space the adapter makes of that file (:mod:`nce_tf.sources.user`).  Rows, conv roles,
shortcut ties and costs therefore come from the Keras graph the final training builds; there
is no second description of a zoo network to keep in step.

Like the rest of :mod:`nce_tf.sources` it sits above ``models`` (Keras builders),
``adapter`` (graph reading) and ``search.space`` (the graph types): none of them imports it.

Example:

>>> from nce_tf.sources import build_space
>>> space = build_space("resnet20")
>>> len(space.rows), space.exact_cost(space.default_widths())
(19, (40813184, 272474))
"""

from nce_tf.errors import UsageError
from nce_tf.models import zoo


def build_space(model, *, lane=1, num_classes=None, input_shape=None):
    """The :class:`~nce_tf.search.space.SearchSpace` of model ``model``.

    Args:
        model: a zoo name (``nce_tf.models.MODEL_NAMES``) or ``keras:PATH.keras``
            (:mod:`nce_tf.sources.user`: the space :func:`nce_tf.adapt` makes of that model).
        lane: round candidate widths up to a multiple of this (1 = no rounding).
        num_classes: classifier width (default: the model's dataset).
        input_shape: ``(H, W, 3)`` with ``H == W`` (default: the model's dataset).
    """
    # import circle: nce_tf.sources' __init__ imports this module
    from nce_tf.sources import get_spec

    spec = get_spec(model)
    if spec.kind == "user":
        return spec.search_space(lane, num_classes, input_shape)
    input_shape = tuple(input_shape or spec.input_shape)
    if len(input_shape) != 3 or input_shape[0] != input_shape[1] or input_shape[2] != 3:
        raise UsageError(f"The search needs square RGB inputs. Received: input_shape={input_shape}.")
    # the adapter loads TensorFlow: nce_tf.sources stays TF-free for the tools' flag checks
    from nce_tf.adapter.graph import read_graph
    from nce_tf.adapter.space import build_adapted_space

    num_classes = int(num_classes or spec.num_classes)
    keras_model = zoo.build_model(model, input_shape=input_shape, num_classes=num_classes)
    space = build_adapted_space(read_graph(keras_model), num_classes=num_classes, input_shape=input_shape,
                                name=model, search_first=True, lane=lane)
    space.source = None  # derived by the zoo's builder from the width list (see the module doc)
    return space
