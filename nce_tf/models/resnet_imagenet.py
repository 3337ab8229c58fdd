"""ImageNet ResNet-18 (basic blocks) and ResNet-50 (bottlenecks, stride on the 3x3: "v1.5").

Stem: 7x7/2 conv -> BN -> act -> 3x3/2 max pool; four stages at 64/128/256/512 base
channels ([2, 2, 2, 2] basic blocks, or [3, 4, 6, 3] bottlenecks with 4x expansion);
global average pooling and a dense classifier.  A block gets a ``1x1 conv(stride) + BN``
projection shortcut when it changes resolution or width (the torchvision form, which
gives the paper's 1.814G / 4.089G MACs and 11.69M / 25.56M parameters).  Whether a block
has that conv is decided by the 1X network, not by the derived widths: ResNet-50's first
block (64 -> 256 channels at stride 1) keeps its projection even in a derived network whose
widths happen to match, as a user model's conv is kept by ``nce_tf.adapt``; one rule for
both, so the zoo's search space is what the adapter reads off the zoo's 1X model.

Width list: the stem, then every conv of every block in order (2 per basic block, 3 per
bottleneck); a projection takes the width of its block's last conv.
"""


BASE = (64, 128, 256, 512)
LAYOUT = {18: ("basic", (2, 2, 2, 2)), 50: ("bottleneck", (3, 4, 6, 3))}
_CONVS = {"basic": ("a", "b"), "bottleneck": ("a", "b", "c")}


def default_widths(depth):
    kind, blocks = LAYOUT[depth]
    widths = [64]
    for base, n in zip(BASE, blocks):
        per_block = [base, base] if kind == "basic" else [base, base, 4 * base]
        widths += per_block * n
    return widths


def width_names(depth):
    kind, blocks = LAYOUT[depth]
    names = ["stem_conv"]
    for s, n in enumerate(blocks):
        for b in range(n):
            names += [f"s{s + 1}_b{b}_{c}_conv" for c in _CONVS[kind]]
    return names


def build(depth, widths, input_shape, num_classes, policy, weight_decay, name):
    # Keras when a network is built: nce_tf.models (names, widths, policies) stays importable without TensorFlow
    import keras

    from nce_tf.models.blocks import Builder

    kind, blocks = LAYOUT[depth]
    bld = Builder(policy, weight_decay)
    inputs = keras.Input(input_shape, name="image")
    x = bld.conv_bn(inputs, widths[0], 7, 2, "stem", role="first")
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    in_width, i = widths[0], 1
    default, in_default = default_widths(depth), default_widths(depth)[0]
    for s, n in enumerate(blocks):
        for b in range(n):
            stride = 2 if s > 0 and b == 0 else 1
            p = f"s{s + 1}_b{b}"
            if kind == "basic":
                wa, wout, out_default = widths[i], widths[i + 1], default[i + 1]
                y = bld.conv_bn(x, wa, 3, stride, f"{p}_a")
                y = bld.conv_bn(y, wout, 3, 1, f"{p}_b", act=False)
                i += 2
            else:
                wa, wb, wout, out_default = widths[i], widths[i + 1], widths[i + 2], default[i + 2]
                y = bld.conv_bn(x, wa, 1, 1, f"{p}_a")
                y = bld.conv_bn(y, wb, 3, stride, f"{p}_b")
                y = bld.conv_bn(y, wout, 1, 1, f"{p}_c", act=False)
                i += 3
            sc = bld.shortcut(x, in_width, wout, stride, f"{p}_shortcut", pooled=False,
                              keep_conv=in_default != out_default)
            x = keras.layers.Add(name=f"{p}_add")([y, sc])
            x = bld.act(x, f"{p}_out_act")
            in_width, in_default = wout, out_default
    return keras.Model(inputs, bld.classifier(x, num_classes), name=name)
