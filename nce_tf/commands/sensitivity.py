r"""``nce-tf analyze sensitivity``: per-layer width sensitivity of trained networks at two precisions.

Each run of ``--runs`` is a finished ``nce-tf train`` work directory (its ``model.keras`` and
``config.json``: the model, data and precision the probe uses); its probe
(:func:`nce_tf.analysis.sensitivity.probe`) is written to ``OUT/probes/NAME.json`` when done (``--out``, the flag ``analyze`` defines), so a
stopped analysis continues where it stopped (a probe whose settings or checkpoint differ is
redone).  Then ``OUT/sensitivity.{json,md,png}`` compare the precisions layer by layer.

Example::

    nce-tf analyze sensitivity --runs=runs/premise/w32a32_s0,runs/premise/w2a2_s0 \
        --out=runs/premise/sensitivity --probe_epochs=3

Runs are labelled by their precision (``W2A2``, ``W32A32``, ...); exactly two precisions are
compared, the lower-bit one first.
"""

import dataclasses
import json
import os
import time

from absl import flags

from nce_tf import cli, provenance
from nce_tf.analysis.probe_config import ProbeConfig
from nce_tf.errors import UsageError
from nce_tf.io_utils import atomic_write_text

flags.DEFINE_list("runs", [], "sensitivity: finished nce-tf train work directories (two precisions).")
flags.DEFINE_list("probe_ratios", ["0.5", "0.75", "1.25", "1.5"],
                  "sensitivity: width changes, multiples of 1/8 in (0, 2] other than 1.")
flags.DEFINE_integer("probe_epochs", 2, "sensitivity: epochs of super-net weight training from each network.")
flags.DEFINE_integer("probe_batch_size", 64, "sensitivity: images per super-net weight step.")
flags.DEFINE_float("probe_lr", 0.002, "sensitivity: SGD learning rate of the super-net's weight steps.")
flags.DEFINE_float("probe_global_clipnorm", 0.0, "sensitivity: clip each super-net weight step's gradients to "
                   "this global norm (0: no clip), as --global_clipnorm does for training.")
flags.DEFINE_integer("probe_bn_batches", 8, "sensitivity: training batches (of 256) each sub-network's BN "
                     "statistics are re-estimated on.")
flags.DEFINE_list("probe_rows", [], "sensitivity: layers (rows) to probe; empty = every searchable layer.")
flags.DEFINE_integer("probe_seed", 0, "sensitivity: seed of the super-net's new channels, sampling and data order.")
flags.DEFINE_list("ground_truth_rows", [], "sensitivity: also train these layers' one-layer changes (at every "
                  "--probe_ratios) and the original with each run's recipe, per precision, and rank-compare "
                  "them with the probe (empty = none).")
flags.DEFINE_list("ground_truth_seeds", ["100", "101"], "sensitivity: training seeds of the ground truth.")
flags.DEFINE_list("ground_truth_ratios", [], "sensitivity: the width changes the ground truth trains (empty = "
                  "--probe_ratios); e.g. 1.5 alone, since the probe cannot see widening (analyze known-answer).")
flags.DEFINE_list("ground_truth_labels", [], "sensitivity: the precisions the ground truth trains (e.g. W2A2; "
                  "empty = both).")
FLAGS = flags.FLAGS


def _config():
    try:
        ratios = tuple(float(r) for r in FLAGS.probe_ratios)
    except ValueError:
        raise UsageError(f"Invalid probe_ratios. Received: probe_ratios={','.join(FLAGS.probe_ratios)!r}. "
                         "Allowed: numbers, multiples of 1/8 in (0, 2] other than 1.") from None
    return ProbeConfig(ratios=ratios, epochs=FLAGS.probe_epochs, batch_size=FLAGS.probe_batch_size,
                       lr=FLAGS.probe_lr, global_clipnorm=FLAGS.probe_global_clipnorm,
                       bn_batches=FLAGS.probe_bn_batches, rows=tuple(FLAGS.probe_rows),
                       seed=FLAGS.probe_seed).validate()


def _run_settings(run):
    # loaded after the flags are checked: a bad flag fails before TensorFlow and the jobs load
    from nce_tf.train.float_init import finished_model

    model, metrics = finished_model(run, "runs")
    path = os.path.join(os.path.dirname(model), "config.json")
    if metrics is None or not os.path.isfile(path):
        raise UsageError(f"Not a finished nce-tf train run (no config.json beside model.keras). Received: runs={run!r}.")
    with open(path, encoding="utf-8") as f:
        return model, json.load(f)


def label_of(settings):
    """``W2A2``, ``W32A32``, ...: the precision a run's settings name."""
    return f"W{settings.get('w_bits', 32)}A{settings.get('a_bits', 32)}"


def main():
    """Runs the probes of ``--runs`` and writes the comparison (see the module doc)."""
    if not FLAGS.runs or not FLAGS.out:
        cli.fail(f"sensitivity needs --runs and --out. Received: runs={FLAGS.runs!r}, out={FLAGS.out!r}.")
    try:
        config = _config()
        runs = [(run, *_run_settings(run)) for run in FLAGS.runs]
    except UsageError as e:
        cli.fail(e)
    labels = sorted({label_of(s) for _, _, s in runs}, key=lambda lab: int(lab[1:].split("A")[0]))
    if len(labels) != 2:
        cli.fail(f"sensitivity compares two precisions. Received: runs of {', '.join(labels)}. "
                 "Allowed: runs of exactly two precisions (e.g. W2A2 and W32A32).")
    plan = _ground_truth_plan(config, labels) if FLAGS.ground_truth_rows else None
    code = provenance.code_state()  # the code this process loaded, not the checkout's state when a probe ends
    cli.load_tensorflow()
    # loaded after the flags are checked: a bad flag fails before TensorFlow and the jobs load
    from nce_tf import sources
    from nce_tf.analysis import sensitivity, sensitivity_report
    from nce_tf.sources.user import file_sha256, load_keras_file
    from nce_tf.train.config import TrainConfig

    probes = []
    os.makedirs(os.path.join(FLAGS.out, "probes"), exist_ok=True)
    for run, model_file, settings in runs:
        name = os.path.basename(os.path.normpath(run))
        path = os.path.join(FLAGS.out, "probes", f"{name}.json")
        # As JSON reads it back (tuples become lists), so a finished probe is recognised.
        key = json.loads(json.dumps({"run": run, "sha256": file_sha256(model_file), "config": config.key()}))
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                done = json.load(f)
            if done.get("key") == key:
                print(f"nce-tf: probe of {run} done already -> {path}", flush=True)
                probes.append(done)
                continue
        tcfg = TrainConfig.from_settings(settings)
        print(f"nce-tf: probing {run} ({label_of(settings)}, {settings['resolved_model']})", flush=True)
        started, cpu = time.time(), time.process_time()
        try:
            trained = load_keras_file(model_file, f"runs={run!r}")
            result = sensitivity.probe(trained, settings["resolved_model"], tcfg.policy(), sources.source_for(tcfg), config)
        except UsageError as e:
            cli.fail(e)
        # The code that probed and its wall / CPU time, as a run records its own (nce_tf.provenance).
        result.update(key=key, run=run, label=label_of(settings), seed=settings.get("seed"),
                      provenance={**provenance.record(), **code, "wall_seconds": round(time.time() - started, 1),
                                  "cpu_seconds": round(time.process_time() - cpu, 1)})
        atomic_write_text(path, json.dumps(result, indent=1))
        probes.append(result)
    summary = sensitivity_report.write(probes, labels, FLAGS.out)
    print(f"nce-tf: {len(probes)} probes -> {FLAGS.out}/sensitivity.md, sensitivity.png", flush=True)
    if FLAGS.ground_truth_rows:
        _ground_truth(runs, plan, summary["delta_accuracy"])


def _ground_truth_plan(config, labels):
    """``(seeds, ratios, labels)`` of the ground truth from its flags, checked before anything runs."""
    try:
        seeds = [int(s) for s in FLAGS.ground_truth_seeds]
    except ValueError:
        cli.fail(f"Invalid ground_truth_seeds. Received: {FLAGS.ground_truth_seeds!r}. Allowed: integers.")
    ratios = config.ratios
    if FLAGS.ground_truth_ratios:
        try:
            ratios = dataclasses.replace(config, ratios=tuple(float(r) for r in FLAGS.ground_truth_ratios)).validate().ratios
        except (ValueError, UsageError):
            cli.fail(f"Invalid ground_truth_ratios. Received: {','.join(FLAGS.ground_truth_ratios)!r}. Allowed: "
                     "numbers, multiples of 1/8 in (0, 2] other than 1.")
    unknown = [lab for lab in FLAGS.ground_truth_labels if lab not in labels]
    if unknown:
        cli.fail(f"Invalid ground_truth_labels. Received: {unknown!r}. Allowed: {labels}.")
    return seeds, ratios, [lab for lab in labels if not FLAGS.ground_truth_labels or lab in FLAGS.ground_truth_labels]


def _ground_truth(runs, plan, rows):
    """Trains the ground truth of each precision with its first run's recipe; writes ``ground_truth.{json,md}``."""
    # loaded after the flags are checked: a bad flag fails before TensorFlow and the jobs load
    from nce_tf.analysis import ground_truth
    from nce_tf.sources import build_space
    from nce_tf.jobs import run_training

    seeds, ratios, labels = plan
    out, lines = {}, []
    for label in labels:
        run, _, settings = next(r for r in runs if label_of(r[2]) == label)
        space = build_space(settings["resolved_model"])
        names = [r.name for r in space.rows]
        unknown = [r for r in FLAGS.ground_truth_rows if r not in names]
        if unknown:
            cli.fail(f"Unknown layer for the ground truth. Received: ground_truth_rows={unknown!r}. Allowed: {names}.")
        results = ground_truth.run(settings, settings["resolved_model"], names, space.default_widths(),
                                   FLAGS.ground_truth_rows, ratios, seeds,
                                   os.path.join(FLAGS.out, "ground_truth", label.lower()), run_training)
        one_shot = {(r["layer"], r["ratio"]): r["groups"][label]["mean"] for r in rows if label in r["groups"]}
        found = ground_truth.agreement(one_shot, ground_truth.deltas(results))
        out[label] = {"template_run": run, "seeds": seeds,
                      "accuracy": {f"{k[0]}@{k[1]}": v for k, v in results.items()}, **found}
        lines += ground_truth.markdown(label, found, ground_truth.deltas(results))
    atomic_write_text(os.path.join(FLAGS.out, "ground_truth.json"), json.dumps(out, indent=1))
    atomic_write_text(os.path.join(FLAGS.out, "ground_truth.md"), "\n".join(lines) + "\n")
    print(f"nce-tf: ground truth -> {FLAGS.out}/ground_truth.md", flush=True)
