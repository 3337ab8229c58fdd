"""CIFAR ResNets in the TAS form: ResNet-20/32/56 and the paper's 8-layer toy ResNet.

Depth ``6n + 2``: a 3x3 stem conv, three stages of ``n`` basic blocks (3x3 conv -> BN ->
act -> 3x3 conv -> BN, plus a shortcut, add, act) at 16/32/64 channels by default, global
average pooling and a dense classifier.  Stride-2 shortcuts are ``AvgPool(2) + 1x1 conv``
(TAS, not ResNet's zero-padding "option A"); a block whose input and output widths differ
gets a 1x1 projection, which is how a derived network with arbitrary widths stays valid.

The width list has ``1 + 6n`` entries: the stem, then conv_a and conv_b of every block
in order.  A shortcut conv takes the width of its block's conv_b.  ``resnet8`` (n = 1)
is the toy of section 4.2: seven searchable convs.
"""


STAGE_WIDTHS = (16, 32, 64)


def default_widths(depth):
    n = (depth - 2) // 6
    widths = [STAGE_WIDTHS[0]]
    for w in STAGE_WIDTHS:
        widths += [w, w] * n
    return widths


def width_names(depth):
    n = (depth - 2) // 6
    names = ["stem_conv"]
    for s in range(3):
        for b in range(n):
            names += [f"s{s + 1}_b{b}_a_conv", f"s{s + 1}_b{b}_b_conv"]
    return names


def build(depth, widths, input_shape, num_classes, policy, weight_decay, name):
    # Keras when a network is built: nce_tf.models (names, widths, policies) stays importable without TensorFlow
    import keras

    from nce_tf.models.blocks import Builder

    n = (depth - 2) // 6
    bld = Builder(policy, weight_decay)
    inputs = keras.Input(input_shape, name="image")
    x = bld.conv_bn(inputs, widths[0], 3, 1, "stem", role="first")
    in_width, i = widths[0], 1
    for s in range(3):
        for b in range(n):
            stride = 2 if s > 0 and b == 0 else 1
            p = f"s{s + 1}_b{b}"
            wa, wb = widths[i], widths[i + 1]
            i += 2
            y = bld.conv_bn(x, wa, 3, stride, f"{p}_a")
            y = bld.conv_bn(y, wb, 3, 1, f"{p}_b", act=False)
            sc = bld.shortcut(x, in_width, wb, stride, f"{p}_shortcut", pooled=True)
            x = keras.layers.Add(name=f"{p}_add")([y, sc])
            x = bld.act(x, f"{p}_out_act")
            in_width = wb
    return keras.Model(inputs, bld.classifier(x, num_classes), name=name)
