"""Preprocessing at the input: ``Rescaling`` and ``Normalization`` as one per-channel affine map.

``keras.applications`` networks carry their input scaling inside the model (MobileNetV3 a
``Rescaling``; EfficientNet a ``Rescaling`` and a ``Normalization``).  Both are ``y = x * scale +
offset`` over the image's channels, which the search never changes: the op keeps them float,
costs nothing (no MACs; ``Normalization``'s mean and variance are statistics, not parameters)
and stands between the image and the first conv without making that conv a body conv
(``image_side``: the stem stays ``first``, pinned and float by the paper's rule).  Anywhere else
a per-channel map would have to follow a searched width, so the op reads them at the input only.

Example:

>>> import keras
>>> layer = keras.layers.Rescaling(1 / 127.5, offset=-1.0)
>>> [float(v) for v in affine_of(layer)[0]], [float(v) for v in affine_of(layer)[1]]
([0.00784313725490196], [-1.0])
"""

import keras
import numpy as np

from nce_tf.search.ops import keras_read
from nce_tf.search.ops.base import Op, register


def affine_of(layer):
    """``(scale, offset)`` of a ``Rescaling`` or ``Normalization`` layer, each a float64 vector of 1
    or C values: ``Rescaling``'s own; ``Normalization``'s ``(x - mean) / max(sqrt(var), eps)`` (Keras's
    formula) as ``scale = 1 / max(sqrt(var), eps)``, ``offset = -mean * scale``."""
    if isinstance(layer, keras.layers.Rescaling):
        scale, offset = layer.scale, layer.offset
    else:
        mean, var = (np.asarray(w, "float64").reshape(-1) for w in (layer.mean, layer.variance))
        scale = 1.0 / np.maximum(np.sqrt(var), keras.config.epsilon())
        offset = -mean * scale
    return np.asarray(scale, "float64").reshape(-1), np.asarray(offset, "float64").reshape(-1)


@register
class InputAffine(Op):
    """``Rescaling`` / ``Normalization`` at the input: ``x * scale + offset`` per image channel
    (``node.args``: the two vectors), float, no cost."""

    kind, image_side = "input_affine", True
    keras_types = (keras.layers.Rescaling, keras.layers.Normalization)

    def from_keras(self, ref, b):
        layer, src = ref.layer, b.src(ref)
        if not b.reads_image(src[0]):
            keras_read.fail(ref, "rescaling and normalization are read at the input only (before the first conv)")
        if getattr(layer, "invert", False):
            keras_read.fail(ref, "invert=True is not supported")
        axis = getattr(layer, "axis", (-1,))
        if isinstance(layer, keras.layers.Normalization) and tuple(axis) not in ((-1,), (len(ref.shape),)):
            keras_read.fail(ref, f"only per-channel normalization (axis=-1) is supported, received axis={axis}")
        scale, offset = affine_of(layer)
        if max(len(scale), len(offset)) not in (1, ref.shape[-1]):
            keras_read.fail(ref, f"scale and offset must be scalars or per channel, received {len(scale)} "
                            f"and {len(offset)} values for {ref.shape[-1]} channels")
        b.node_of[ref.name] = b.add(name=ref.name, op=self.kind, src=src, area=keras_read.area(ref.shape),
                                    layer=ref.name, args={"scale": scale.tolist(), "offset": offset.tolist()})

    def call(self, node, layer, inputs, run):
        x = inputs[0]
        scale, offset = (np.asarray(node.args[k], "float32") for k in ("scale", "offset"))
        return x * scale + offset

    def derive(self, node, ref, x, ctx):
        """The user's layer, with its weights (an adapted ``Normalization``'s mean and variance)."""
        layer = type(ref.layer).from_config(ref.layer.get_config())
        y = layer(x)
        layer.set_weights(ref.layer.get_weights())
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()  # its mean and variance tensors are computed from the weights here
        return y

    def export_step(self, layer, plan):
        scale, offset = (v.astype("float32") for v in affine_of(layer))

        def step(values):
            values[layer.output] = plan.requant(values[layer.input] * scale + offset, layer)
        return step
