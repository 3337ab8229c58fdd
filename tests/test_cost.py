"""Cost accounting: the paper's table, and a count by hand on a small derived network."""

import keras
import pytest

from nce_tf import cost, models
from nce_tf.layers import QuantConv2D
from nce_tf.models import QuantPolicy

# The NCE paper's Table 2 / Table 3 (FLOPs are MACs), as printed: MACs and PARAMs strings.
PAPER = {
    "resnet20": ("40.81M", "0.27M"),
    "resnet32": ("69.12M", "0.47M"),
    "resnet56": ("125.75M", "0.86M"),
    "vgg16": ("313.2M", "14.72M"),
    "resnet18": ("1.814G", "11.69M"),
    "resnet50": ("4.089G", "25.56M"),
}


def _as_printed(count, printed):
    """``count`` formatted in the unit and with the decimals of the paper's ``printed``."""
    unit = {"M": 1e6, "G": 1e9}[printed[-1]]
    decimals = len(printed[:-1].split(".")[1])
    return f"{count / unit:.{decimals}f}{printed[-1]}"


@pytest.mark.parametrize("name", sorted(PAPER))
def test_reproduces_the_paper_table(name):
    macs, params = PAPER[name]
    c = cost.count_arch(name)
    assert _as_printed(c.macs, macs) == macs  # at least 4 significant digits
    assert _as_printed(c.params, params) == params


def _hand_count_resnet8(w, classes=10):
    """ResNet-8 (TAS form) counted from first principles; w = [stem, a1, b1, a2, b2, a3, b3]."""
    macs = params = 0

    def conv(k, cin, cout, hw):
        nonlocal macs, params
        macs += k * k * cin * cout * hw * hw
        params += k * k * cin * cout + 2 * cout  # kernel + the BN after it

    conv(3, 3, w[0], 32)
    cin, hw = w[0], 32
    for s in range(3):
        a, b = w[1 + 2 * s], w[2 + 2 * s]
        out_hw = hw // 2 if s else hw
        conv(3, cin, a, out_hw)
        conv(3, a, b, out_hw)
        if s or cin != b:
            conv(1, cin, b, out_hw)  # avg-pool then 1x1: counted at the output resolution
        cin, hw = b, out_hw
    macs += cin * classes
    params += cin * classes + classes
    return macs, params


@pytest.mark.parametrize("widths", [
    [16, 16, 16, 32, 32, 64, 64],
    [8, 30, 12, 17, 64, 128, 40],
    [32, 4, 32, 32, 40, 64, 64],
])
def test_count_matches_a_hand_count(widths):
    c = cost.count_arch("resnet8", widths)
    assert (c.macs, c.params) == _hand_count_resnet8(widths)


def test_memory_at_two_bits():
    widths = [8, 30, 12, 17, 64, 128, 40]
    c = cost.count_arch("resnet8", widths, policy=QuantPolicy(w_bits=2, a_bits=2))
    model = models.build_model("resnet8", widths, policy=QuantPolicy(w_bits=2, a_bits=2))
    expected = 0.0
    for layer in model.layers:
        if isinstance(layer, QuantConv2D) or isinstance(layer, keras.layers.Dense):
            bits = layer.kernel_quantizer.bits if layer.kernel_quantizer else 32
            expected += layer.kernel.numpy().size * bits / 8 + (layer.bias.numpy().size * 4 if layer.use_bias else 0)
        elif isinstance(layer, keras.layers.BatchNormalization):
            expected += 2 * layer.gamma.numpy().size * 4
    assert c.memory_bytes == pytest.approx(expected)
    assert c.float_memory_bytes == 4 * c.params
    assert [r.w_bits for r in c.layers if r.name.endswith("b_conv")] == [2, 2, 2]


def test_counts_depthwise_and_sequential_models():
    model = keras.Sequential([
        keras.Input((16, 16, 8)),
        keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False),
        keras.layers.Conv2D(12, 1, use_bias=True),
        keras.layers.BatchNormalization(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(4),
    ])
    c = cost.count_model(model)
    assert c.macs == 9 * 8 * 16 * 16 + 8 * 12 * 16 * 16 + 12 * 4
    assert c.params == 9 * 8 + (8 * 12 + 12) + 2 * 12 + (12 * 4 + 4)


def test_summary_table_lists_every_layer():
    c = cost.count_arch("resnet8")
    text = cost.summary(c)
    for row in c.layers:
        assert row.name in text
    assert "Total MACs: 12,501,632" in text
