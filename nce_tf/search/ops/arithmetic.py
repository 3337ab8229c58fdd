"""``keras.ops`` arithmetic in a functional model, read as the one pattern networks use it for:
MobileNetV3's hard sigmoid, written ``ReLU(6.0)(x + 3.0) * (1.0 / 6.0)``.

``x + 3.0`` and ``* (1 / 6)`` are Keras operations, not layers (a functional model keeps them
in ``model.operations``, with the constant in the call's arguments: ``LayerRef.consts``).  The
three together are Keras's ``hard_sigmoid`` exactly, so the op folds them into one float
activation node (``fn="hard_sigmoid"``): the ``ReLU(6)`` inside is not a PACT site (the gate
stays float, as every sigmoid does), and the derived network writes one
``Activation("hard_sigmoid")`` layer, which the cost count, float initialisation and the export
read as any other activation.  Any other use of these operations is refused in one line.

Example:

>>> import keras
>>> i = keras.Input((4,))
>>> m = keras.Model(i, keras.layers.ReLU(6.0)(i + 3.0) * (1.0 / 6.0))
>>> [type(o) in HardSigmoidOps.keras_types for o in m.operations]
[False, True, False, True]
"""

import keras

from nce_tf.search.ops import keras_read
from nce_tf.search.ops.base import register
from nce_tf.search.ops.follow import Fn


def _operation_type(fn):
    """The class of the Keras operation ``fn`` applies to a symbolic tensor (found through the
    public API: the last operation of a one-op functional model)."""
    x = keras.Input((1,))
    return type(keras.Model(x, fn(x)).operations[-1])


SCALAR_ADD = _operation_type(lambda x: x + 3.0)
SCALAR_MULTIPLY = _operation_type(lambda x: x * 2.0)


def _is_relu6(layer):
    return (isinstance(layer, keras.layers.ReLU) and layer.max_value is not None and float(layer.max_value) == 6.0
            and not layer.negative_slope and not layer.threshold)


@register
class HardSigmoidOps(Fn):
    """``relu6(x + 3) / 6`` spelled in ``keras.ops``: one float ``hard_sigmoid`` node."""

    kind = "hard_sigmoid_ops"
    keras_types = (SCALAR_ADD, SCALAR_MULTIPLY)

    def from_keras(self, ref, b):
        """The ``+ 3.0`` with its ``ReLU(6)`` and ``* (1/6)`` (folded: ``b.node_of`` of all three)."""
        relu = b.only_consumer(ref.name)
        scale = b.only_consumer(relu.name) if relu is not None else None
        if not (type(ref.layer) is SCALAR_ADD and ref.consts == [3.0] and len(ref.inputs) == 1
                and relu is not None and _is_relu6(relu.layer) and scale is not None
                and type(scale.layer) is SCALAR_MULTIPLY and len(scale.consts) == 1
                and abs(scale.consts[0] - 1.0 / 6.0) < 1e-6):
            keras_read.fail(ref, "keras.ops arithmetic is read only as the hard sigmoid ReLU(6.0)(x + 3.0) * "
                            "(1.0 / 6.0); use keras.layers (Add, Rescaling, Activation) otherwise")
        node = b.add(name=relu.name, op=self.kind, src=b.src(ref), fn="hard_sigmoid", layer=ref.name)
        for name in (ref.name, relu.name, scale.name):
            b.node_of[name] = node

    def derive(self, node, ref, x, ctx):
        return keras.layers.Activation("hard_sigmoid", name=node.name)(x)

    def derive_folded(self, node, ref, x, ctx):
        return x  # the ReLU(6) and the scaling: inside the one Activation above
