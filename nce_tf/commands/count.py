"""Exact MACs, parameters, weight memory and BOPs of a zoo model or an arch.json, with a per-layer table.

Examples:

    nce-tf count --model=resnet20
    nce-tf count --model=resnet20 --w_bits=2 --a_bits=2      # memory and BOPs at 2 bits
    nce-tf count --arch=runs/search/arch.json --w_bits=2 --a_bits=2 --float_bits=8  # as the search counts
    nce-tf count --arch=runs/search/arch.json --json

``--json`` prints one JSON object: ``macs``, ``params``, ``bops`` (integers), ``memory_bytes``,
``float_memory_bytes``, ``widths``, ``float_bits`` and the per-layer rows. From a checkout, python
tools/count.py takes the same flags.
"""

import json

from absl import flags

from nce_tf import arch as arch_lib
from nce_tf import choices, cli, sources
from nce_tf.models import QuantPolicy

flags.DEFINE_string("model", "", f"Model: {sources.MODEL_HELP}; or the model of --arch.")
flags.DEFINE_string("arch", "", "arch.json giving the per-layer widths.")
flags.DEFINE_integer("w_bits", 32, "Weight bits of quantized layers (2..8, 32 = float).")
flags.DEFINE_integer("a_bits", 32, "Activation bits (2..8, 32 = float).")
flags.DEFINE_string("weight_quantizer", "sawb", "Weight quantizer: " + " | ".join(choices.WEIGHT_QUANTIZER_NAMES))
flags.DEFINE_boolean("quantize_first", False, "Count the first conv at w_bits too.")
flags.DEFINE_boolean("quantize_last", False, "Count the classifier at w_bits too.")
flags.DEFINE_boolean("quantize_shortcut", False, "Count shortcut convs at w_bits too.")
flags.DEFINE_integer("float_bits", 32, "Bits that memory and BOPs count for float kernels, the image and activations "
                     "off the PACT grid: 32 = as the Keras model holds them, 8 = as the int8 TFLite file (and a "
                     "search, by default) counts them.")
flags.DEFINE_integer("num_classes", 0, "Classifier width (0 = the --arch file's, else the model's dataset: 10 or 1000).")
flags.DEFINE_boolean("json", False, "Print one JSON object instead of the table.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        cli.fail(f"Unexpected positional arguments. Received: {argv[1:]!r}.")

    if FLAGS.num_classes < 0 or FLAGS.num_classes == 1:
        cli.fail(f"Invalid num_classes. Received: num_classes={FLAGS.num_classes}. Allowed: 0 or >= 2.")
    if FLAGS.float_bits not in choices.FLOAT_BITS:
        cli.fail(f"Invalid float_bits. Received: float_bits={FLAGS.float_bits}. "
                 f"Allowed: {', '.join(map(str, choices.FLOAT_BITS))}.")
    if not (FLAGS.arch or FLAGS.model):
        cli.fail("Nothing to count. Received: model='' and arch=''. Pass --model=NAME or --arch=FILE.")
    named = arch_lib.read_record(FLAGS.arch)["model"] if FLAGS.arch else FLAGS.model
    if sources.is_user_model(named) or sources.is_user_model(FLAGS.model):
        cli.load_tensorflow()  # quietly, before a keras:PATH model is loaded to read its widths
    # A zoo name, its arch record and widths are checked before TensorFlow loads.
    at = {"num_classes": FLAGS.num_classes or None}
    if FLAGS.arch:
        a = arch_lib.load_arch(FLAGS.arch, expected_model=FLAGS.model or None)
        name, widths = a.model, a.widths
        # The search's own input size and classes, so the count reproduces its figures.
        at = {"num_classes": FLAGS.num_classes or a.extra.get("num_classes"),
              "input_shape": tuple(a.extra["input_shape"]) if a.extra.get("input_shape") else None}
    else:
        name, widths = FLAGS.model, sources.default_widths(FLAGS.model)
    policy = QuantPolicy(
        w_bits=FLAGS.w_bits, a_bits=FLAGS.a_bits, weight_quantizer=FLAGS.weight_quantizer,
        quantize_first=FLAGS.quantize_first, quantize_last=FLAGS.quantize_last,
        quantize_shortcut=FLAGS.quantize_shortcut,
    )
    cli.load_tensorflow()
    # loaded after the flags are checked: a bad flag fails before TensorFlow and the jobs load
    from nce_tf import cost

    result = cost.count_arch(name, widths, FLAGS.float_bits, policy=policy, **at)
    if FLAGS.json:
        print(json.dumps({**result.to_dict(), "widths": widths, "w_bits": FLAGS.w_bits,
                          "a_bits": FLAGS.a_bits, "float_bits": FLAGS.float_bits}))
    else:
        print(f"{name} W{FLAGS.w_bits}A{FLAGS.a_bits}, widths {widths}")
        print(cost.summary(result))

