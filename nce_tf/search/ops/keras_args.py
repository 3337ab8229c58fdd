"""How the derived network of an adapted model carries over the user's Keras layer arguments.

A derived conv or dense layer is the user's layer at its searched width, quantized by the
policy: every other constructor argument is the user's (``pick``), the kernel regularizer is the
user's unless the run sets its own coupled weight decay (``regularizer``), and an activation the
user folded into the layer becomes a layer of its own after it (``folded_activation``: ReLU and
ReLU6 sites are the policy's quantized activation, others stay as they are), which then takes the
user's activity regularizer (``own_activity``: Keras applies it after the activation).
"""

import keras

RELU_ACTIVATIONS = ("relu", "relu6")

CONV_KEYS = ("kernel_size", "strides", "padding", "use_bias", "kernel_initializer", "bias_initializer",
             "kernel_regularizer", "bias_regularizer", "kernel_constraint", "bias_constraint")
DEPTHWISE_KEYS = ("kernel_size", "strides", "padding", "use_bias", "depthwise_initializer", "bias_initializer",
                  "depthwise_constraint", "bias_constraint", "bias_regularizer")
DENSE_KEYS = ("use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer",
              "kernel_constraint", "bias_constraint")
# Not carried over: ``trainable`` (the derived network is trained afresh at its widths, frozen rows
# included: a frozen row keeps its width, not its weights' training state) and a layer's own ``dtype``
# (the run's --mixed_precision policy decides every layer's)


def activation_name(fn):
    """The name of a Keras activation function, ``""`` for the identity."""
    name = getattr(fn, "__name__", str(fn))
    return "" if name == "linear" else name


def pick(config, keys):
    return {k: config[k] for k in keys if k in config}


def own_activity(config, layer):
    """The user's ``activity_regularizer`` for the derived layer itself, where Keras applies it to
    the same tensor: a layer without an activation of its own.  With one, Keras regularizes the
    activation's output, so it goes to the activation layer after the derived one
    (:func:`folded_activation`); a classifier's softmax, which the derived network drops (it ends
    in logits), takes it along."""
    if activation_name(layer.activation) or config.get("activity_regularizer") is None:
        return {}
    return {"activity_regularizer": config["activity_regularizer"]}


def regularizer(weight_decay, config):
    """The derived layer's kernel regularizer: the user's (``weight_decay=None``) or coupled L2."""
    if weight_decay is None:
        return config.get("kernel_regularizer")
    return keras.regularizers.L2(weight_decay / 2.0) if weight_decay else None


def relu_args(name=None, layer=None):
    """A ReLU site's node ``args``: the float cap a ReLU6 (``name="relu6"``, or a ``ReLU`` layer's
    ``max_value``) keeps where activations are not quantized."""
    cap = 6.0 if name == "relu6" else getattr(layer, "max_value", None)
    return {"max_value": float(cap)} if cap is not None else {}


def folded_activation(y, ref, policy):
    name = activation_name(ref.layer.activation)
    if not name:
        return y
    reg = ref.layer.get_config().get("activity_regularizer")  # Keras's: on the activation's output
    extra = {"activity_regularizer": reg} if reg is not None else {}
    if name in RELU_ACTIVATIONS:
        return policy.activation(f"{ref.name}_act", **relu_args(name), **extra)(y)
    return keras.layers.Activation(name, name=f"{ref.name}_{name}", **extra)(y)
