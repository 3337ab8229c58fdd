#!/usr/bin/env python
r"""The paper's analyses of a work directory, each as a PNG plus the numbers behind it (CSV / JSON).

Examples:

    python tools/analyze.py channels --workdir=runs/quickstart   # Fig. 5: original vs derived channels
    python tools/analyze.py stdev --workdir=runs/quickstart      # Fig. 1: activation std and SQNR per layer

Results go to WORKDIR/analysis/. `stdev` compares the derived W2A2 network of an nce.py run with the
original network in W32A32 and W2A2, which it trains first (same settings as the run's final
training, --epochs to shorten) unless WORKDIR/analysis/{w32a32,w2a2}/ already hold them.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nce_tf import cli  # noqa: E402  (sets TF's log level before TensorFlow loads)
from absl import flags  # noqa: E402

SUBCOMMANDS = ("channels", "stdev")
flags.DEFINE_string("workdir", "", "Work directory of a finished tools/nce.py run (required).")
flags.DEFINE_integer("epochs", 0, "stdev: epochs of the reference trainings (0 = as the run's final training).")
flags.DEFINE_integer("samples", 256, "stdev: test images the statistics are taken over.")
FLAGS = flags.FLAGS


def _need(path, what):
    if not os.path.exists(path):
        cli.fail(f"The work directory has no {what}. Received: workdir={FLAGS.workdir!r} (expected {path}).")


def main(argv):
    if len(argv) != 2 or argv[1] not in SUBCOMMANDS:
        cli.fail(f"Expected one subcommand. Received: {argv[1:]!r}. Allowed: {', '.join(SUBCOMMANDS)}.")
    if not FLAGS.workdir:
        cli.fail("A work directory is required. Received: workdir=''. Pass --workdir=DIR.")
    if FLAGS.epochs < 0 or FLAGS.samples < 1:
        cli.fail(f"Invalid --epochs/--samples. Received: epochs={FLAGS.epochs}, samples={FLAGS.samples}. "
                 "Allowed: epochs >= 0, samples >= 1.")
    workdir = os.path.abspath(FLAGS.workdir)
    arch_path = os.path.join(workdir, "arch.json")
    _need(arch_path, "arch.json (run tools/nce.py first)")
    cli.load_tensorflow()
    out = os.path.join(workdir, "analysis")
    os.makedirs(out, exist_ok=True)
    if argv[1] == "channels":
        from nce_tf.analysis import channels

        summary = channels.run(arch_path, out)
        print(f"nce-tf: {summary['expanded']} layers wider, {summary['narrowed']} narrower than the original "
              f"-> {out}/channels.png", flush=True)
        return
    _need(os.path.join(workdir, "train", "model.keras"), "trained derived network (train/model.keras)")
    _stdev(workdir, out)


def _stdev(workdir, out):
    import dataclasses

    import numpy as np

    from nce_tf import data
    from nce_tf.analysis import stdev
    from nce_tf.export.exporter import load_model
    from nce_tf.train import TrainConfig
    from nce_tf.train.trainer import run_training

    with open(os.path.join(workdir, "train", "config.json"), encoding="utf-8") as f:
        saved = json.load(f)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    base = TrainConfig(**{k: v for k, v in saved.items() if k in fields})
    base = dataclasses.replace(base, arch="", model=saved["resolved_model"], verbose=0,
                               **({"epochs": FLAGS.epochs, "warmup_epochs": min(base.warmup_epochs, FLAGS.epochs - 1)}
                                  if FLAGS.epochs else {}))
    models = {}
    for label, bits in (("W32A32", 32), ("W2A2", 2)):
        run_dir = os.path.join(out, label.lower())
        if not os.path.exists(os.path.join(run_dir, "metrics.json")):
            print(f"nce-tf: training the original network in {label} for the comparison -> {run_dir}", flush=True)
            run_training(dataclasses.replace(base, workdir=run_dir, w_bits=bits, a_bits=bits))
        models[f"original {label}"] = load_model(os.path.join(run_dir, "model.keras"))
    models["NCE W2A2"] = load_model(os.path.join(workdir, "train", "model.keras"))
    source = data.get_source(base.dataset, tfds_data_dir=base.tfds_data_dir or None, seed=base.seed,
                             synthetic_train_size=base.synthetic_train_size,
                             synthetic_test_size=base.synthetic_test_size)
    images = np.concatenate([x.numpy() for x, _ in data.make_pipeline(
        source.test.take(FLAGS.samples), source.info, training=False, batch_size=128)])
    result = stdev.run(models, images, out)
    mean_sqnr = {label: np.mean([v["sqnr_db"] for v in s.values() if v["sqnr_db"] is not None] or [np.nan])
                 for label, s in result["stats"].items()}
    print("nce-tf: mean SQNR of PACT sites (dB): " + ", ".join(f"{k} {v:.2f}" for k, v in mean_sqnr.items())
          + f" -> {out}/stdev.png", flush=True)


if __name__ == "__main__":
    cli.run(main)
