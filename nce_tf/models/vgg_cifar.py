"""CIFAR VGG-16 with BatchNorm.

Thirteen 3x3 conv -> BN -> act layers in five groups (64, 64 | 128, 128 | 256 x 3 |
512 x 3 | 512 x 3), a 2x2 max pool after each group, global average pooling (the map
is 1x1 by then) and one dense classifier: 313.2M MACs and 14.72M parameters, the
paper's Table 2 figures.  The width list has 13 entries, one per conv.
"""


GROUPS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def default_widths():
    return [w for group in GROUPS for w in group]


def width_names():
    return [f"conv{i + 1}_conv" for i in range(sum(len(g) for g in GROUPS))]


def build(widths, input_shape, num_classes, policy, weight_decay, name):
    # Keras when a network is built: nce_tf.models (names, widths, policies) stays importable without TensorFlow
    import keras

    from nce_tf.models.blocks import Builder

    bld = Builder(policy, weight_decay)
    inputs = keras.Input(input_shape, name="image")
    x, i = inputs, 0
    for g, group in enumerate(GROUPS):
        for _ in group:
            x = bld.conv_bn(x, widths[i], 3, 1, f"conv{i + 1}", role="first" if i == 0 else "body")
            i += 1
        x = keras.layers.MaxPooling2D(2, name=f"maxpool{g + 1}")(x)
    return keras.Model(inputs, bld.classifier(x, num_classes), name=name)
