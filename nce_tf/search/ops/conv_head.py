"""MobileNet's classifier: a 1x1 ``Conv2D`` of ``num_classes`` filters on a ``(1, 1, C)`` map, then a
``Flatten`` or ``Reshape`` to the logits and a softmax ``Activation``.

On a 1 x 1 map a 1x1 conv is a dense layer: ``C x num_classes`` MACs and weights, a bias per
class.  So the op is the ``dense`` classifier (its cost terms, its ``SearchDense`` in the
super-net, float by the paper's rule: role ``last``) with a conv's Keras side: ``Conv.from_keras``
hands it every conv that ``takes`` (1x1 kernel, 1 x 1 output, only flattens, reshapes and a
softmax between it and the model's output), and the derived network keeps the user's conv
(``QuantConv2D``) and flatten.  The tail is folded into the classifier's node; the softmax is
dropped there, as a ``Dense`` classifier's is: the search and the derived network work on logits.

Example:

>>> from nce_tf.search.ops import OPS, Classifier
>>> isinstance(OPS["conv_classifier"], Classifier)
True
"""

import keras
import tensorflow as tf

from nce_tf.layers import QuantConv2D
from nce_tf.search.ops import keras_args
from nce_tf.search.ops.base import register
from nce_tf.search.ops.weighted import Classifier


def _passes_logits(layer):
    """A layer between a classifier and the model's output: a reshape or a softmax."""
    if isinstance(layer, keras.layers.Activation):
        return keras_args.activation_name(layer.activation) in ("softmax", "")
    return isinstance(layer, (keras.layers.Flatten, keras.layers.Reshape, keras.layers.Softmax))


@register
class ConvClassifier(Classifier):
    """A 1x1 conv classifier on a 1 x 1 map (its flatten and softmax folded into its node)."""

    kind = "conv_classifier"
    keras_types = ()  # read by ``Conv.from_keras``

    @staticmethod
    def tail(ref, b):
        """The layers from the conv ``ref`` to the model's output, if it is a classifier, else ``None``."""
        if tuple(ref.layer.kernel_size) != (1, 1) or tuple(ref.shape[:-1]) != (1, 1):
            return None
        if keras_args.activation_name(ref.layer.activation) not in ("softmax", ""):
            return None
        tail, name = [], ref.name
        while name != b.output_name:
            nxt = b.only_consumer(name)
            if nxt is None or not _passes_logits(nxt.layer):
                return None
            tail.append(nxt)
            name = nxt.name
        return tail

    def from_keras(self, ref, b):
        node = b.add(name=ref.name, op=self.kind, src=b.src(ref), use_bias=bool(ref.layer.use_bias),
                     layer=ref.name)
        for r in [ref, *self.tail(ref, b)]:
            b.node_of[r.name] = node

    def call(self, node, layer, inputs, run):
        x = inputs[0]
        return layer(tf.reshape(x, [tf.shape(x)[0], -1]))  # a 1 x 1 map: the dense layer it is

    def derive(self, node, ref, x, ctx):
        config = ref.layer.get_config()
        return QuantConv2D(ctx.space.num_classes,
                           **{**keras_args.pick(config, keras_args.CONV_KEYS),
                              **keras_args.own_activity(config, ref.layer),
                              "kernel_regularizer": keras_args.regularizer(ctx.weight_decay, config)},
                           kernel_quantizer=ctx.policy.kernel_quantizer("last"), name=ref.name)(x)

    def derive_folded(self, node, ref, x, ctx):
        """The flatten or reshape as the user wrote it (to ``num_classes`` values); the softmax dropped."""
        if isinstance(ref.layer, (keras.layers.Activation, keras.layers.Softmax)):
            return x
        return super().derive_folded(node, ref, x, ctx)

    def inherit(self, node, sn, ctx):
        target = ctx.model.get_layer(node.layer)
        kernel = sn.kernel.numpy()[ctx.cols, :ctx.space.num_classes]
        target.kernel.assign(kernel.reshape(target.kernel.shape))
        if target.use_bias:
            target.bias.assign(sn.bias.numpy()[:ctx.space.num_classes])
