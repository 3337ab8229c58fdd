r"""Export the trained network of a work directory for deployment: DIR/export/.

Examples:

    nce-tf export --workdir=runs/quickstart            # after nce-tf nce or nce-tf train
    nce-tf export --workdir=runs/quickstart --int8_io  # int8 input and output tensors

Writes model.keras, saved_model/, model_int8.tflite (integer-only, the 2-bit grids kept exactly),
model_int4.tflite (the same file with the low-bit filters stored as int4: half their bytes, the
same outputs on LiteRT's builtin kernels), model_float.tflite, weights_2bit.npz (packed codes +
scales) and model_card.json (costs, accuracy of the Keras and the TFLite models on the same test
images, measured parity, which kernels run the int4 ops, versions).
From a checkout, python tools/export.py takes the same flags.
"""

import os

from absl import flags

from nce_tf import cli

flags.DEFINE_string("workdir", "", "Work directory of a finished nce.py or train.py run (required).")
flags.DEFINE_boolean("int8_io", False, "Give the TFLite model int8 input and output tensors (default float).")
flags.DEFINE_integer("parity_samples", 512, "Test images used for the accuracy and parity checks.")
flags.DEFINE_integer("calibration_samples", 256, "Training images used to calibrate the float layers' ranges.")
FLAGS = flags.FLAGS


def main(argv):
    cli.no_positional(argv)
    if not FLAGS.workdir:
        cli.fail("A work directory is required. Received: workdir=''. Pass --workdir=DIR.")
    if not os.path.isdir(FLAGS.workdir):
        cli.fail(f"Work directory not found. Received: workdir={FLAGS.workdir!r}")
    for name in ("parity_samples", "calibration_samples"):
        if FLAGS[name].value < 1:
            cli.fail(f"Invalid {name}. Received: {name}={FLAGS[name].value}. Allowed: >= 1.")
    # loaded after the flags are checked: a bad flag fails before TensorFlow and the jobs load
    from nce_tf.export.workdir import check_export_dir, find_trained_model

    find_trained_model(os.path.abspath(FLAGS.workdir))  # both before TensorFlow loads
    check_export_dir(os.path.join(FLAGS.workdir, "export"))
    cli.load_tensorflow()
    # loaded after the flags are checked: a bad flag fails before TensorFlow and the jobs load
    from nce_tf.export.exporter import run_export

    run_export(FLAGS.workdir, int8_io=FLAGS.int8_io, parity_samples=FLAGS.parity_samples,
               calibration_samples=FLAGS.calibration_samples)

