r"""The paper's analyses of a work directory, each as a PNG plus the numbers behind it (CSV / JSON).

Examples:

    nce-tf analyze channels --workdir=runs/quickstart   # Fig. 5: original vs derived channels
    nce-tf analyze stdev --workdir=runs/quickstart      # Fig. 1: activation std and SQNR per layer
    nce-tf analyze tradeoff --workdir=runs/quickstart   # Fig. 2: accuracy vs FLOPs / PARAMs, NCE vs WRPN
    nce-tf analyze kendall --workdir=runs/quickstart    # Fig. 4: alpha gradients, Kendall scores
    nce-tf analyze sensitivity --runs=A,B --out=DIR    # per-layer width sensitivity at two precisions
    nce-tf analyze known-answer --out=DIR              # the probe against retraining on a 1x1 bottleneck
    nce-tf analyze kendall --group=W2A2=runs/tq_s0,runs/tq_s1 --group=W32A32=runs/tf_s0,runs/tf_s1 \
        --min_ratio=0.5 --out=runs/fig4c               # Fig. 4c from finished searches, over seeds

Results go to WORKDIR/analysis/. `stdev` compares the derived W2A2 network of an nce-tf nce run with the
original network in W32A32 and W2A2, which it trains first (same settings as the run's final
training, --epochs to shorten) unless WORKDIR/analysis/{w32a32,w2a2}/ already hold them.
`tradeoff` runs nce-tf nce with the run's settings for NCE and for WRPN at each of --budgets (FLOPs
ratios), on a short schedule (--epochs, --search_epochs; a demonstration of the method, not the paper's
numbers). `kendall` runs four short searches with the run's settings (W2A2 / W32A32, with / without
expansion) and scores each layer's gradient preference for more channels; with --group it runs
nothing and scores finished searches instead (Fig. 4c's protocol: TAS 1x8 searches with and without
quantization, optionally NCE ones, the same seeds in every group), printing per layer each group's
score (mean +- std over its seeds) and size measure gap_t (nce_tf/analysis/kendall.py) and writing
them to --out. The runs of stdev, tradeoff and kendall are a plan of the run planner (nce_tf.plans):
--jobs child processes at a time in the working directory (relative paths in the run's settings
resolve as they did for the run), a run that finished is not redone, each run's output in
<run directory>.log. From a checkout, python tools/analyze.py takes the same
arguments.
"""

import dataclasses
import json
import os

from absl import flags

from nce_tf import cli, plans
from nce_tf.commands import sensitivity
from nce_tf.io_utils import atomic_write_text
from nce_tf.search.config import SearchConfig
from nce_tf.train.config import TrainConfig

SUBCOMMANDS = ("channels", "stdev", "tradeoff", "kendall", "sensitivity", "known-answer")
flags.DEFINE_string("workdir", "", "Work directory of a finished nce-tf nce run (required).")
flags.DEFINE_integer("epochs", 0, "stdev: epochs of the reference trainings (0 = as the run's final training); "
                     "tradeoff: training epochs of each run (0 = the schedule's).")
flags.DEFINE_integer("samples", 256, "stdev: test images the statistics are taken over.")
flags.DEFINE_list("budgets", ["0.75", "1.0", "1.5"], "tradeoff: FLOPs ratios of the runs.")
flags.DEFINE_integer("search_epochs", 0, "tradeoff / kendall: search epochs of each run (0 = the schedule's).")
DEMO = {"search_warmup_epochs": 1, "search_epochs": 2, "search_steps_per_epoch": 8,
        "epochs": 4, "warmup_epochs": 0, "steps_per_epoch": 16}
flags.DEFINE_enum("schedule", "demo", ["demo", "run"],
                  f"tradeoff / kendall: 'demo' = {DEMO['search_warmup_epochs']} + {DEMO['search_epochs']} search "
                  f"epochs of {DEMO['search_steps_per_epoch']} steps and {DEMO['epochs']} training epochs of "
                  f"{DEMO['steps_per_epoch']} steps, minutes "
                  "in all on 2 CPU cores (a demonstration of the method); 'run' = the run's own schedule (one whole "
                  "pipeline per point). --epochs / --search_epochs override either.")
flags.DEFINE_integer("jobs", 2, "tradeoff / kendall / stdev: runs at a time (each is its own process).")
flags.DEFINE_multi_string("group", [], "kendall: LABEL=DIR[,DIR...], a group of finished searches (work "
                          "directories, one per seed) scored instead of running searches; repeat per group.")
flags.DEFINE_float("min_ratio", 0.0, "kendall: rank only the candidates at least this many times the layer's "
                   "original width (0.5: from n/2 up, leaving out the narrow ones any precision rejects).")
flags.DEFINE_string("out", "", "kendall with --group: directory of kendall.{png,csv,json} (required with --group); "
                    "sensitivity: directory of probes/ and sensitivity.{json,md,png}; known-answer: directory of "
                    "known_answer.{json,md} and the probed networks.")
FLAGS = flags.FLAGS


def _need(path, what):
    if not os.path.exists(path):
        cli.fail(f"The work directory has no {what}. Received: workdir={FLAGS.workdir!r} (expected {path}).")


def main(argv):
    if len(argv) != 2 or argv[1] not in SUBCOMMANDS:
        cli.fail(f"Expected one subcommand. Received: {argv[1:]!r}. Allowed: {', '.join(SUBCOMMANDS)}.")
    if argv[1] == "sensitivity":  # trained runs, not one nce run's work directory
        return sensitivity.main()
    if argv[1] == "known-answer":
        return _known_answer()
    if not 0 <= FLAGS.min_ratio <= 2:
        cli.fail(f"Invalid --min_ratio. Received: min_ratio={FLAGS.min_ratio}. Allowed: 0 <= min_ratio <= 2.")
    if FLAGS.group:
        if argv[1] != "kendall":
            cli.fail(f"--group is a kendall option. Received: {argv[1]!r} with group={FLAGS.group!r}.")
        return _kendall_groups()
    if not FLAGS.workdir:
        cli.fail("A work directory is required. Received: workdir=''. Pass --workdir=DIR.")
    if FLAGS.jobs < 1:
        cli.fail(f"Invalid --jobs. Received: jobs={FLAGS.jobs}. Allowed: jobs >= 1.")
    if FLAGS.epochs < 0 or FLAGS.samples < 1:
        cli.fail(f"Invalid --epochs/--samples. Received: epochs={FLAGS.epochs}, samples={FLAGS.samples}. "
                 "Allowed: epochs >= 0, samples >= 1.")
    workdir = os.path.abspath(FLAGS.workdir)
    arch_path = os.path.join(workdir, "arch.json")
    _need(arch_path, "arch.json (run nce-tf nce first)")
    cli.load_tensorflow()
    out = os.path.join(workdir, "analysis")
    os.makedirs(out, exist_ok=True)
    if argv[1] == "channels":
        # loaded after the flags are checked: a bad flag fails before TensorFlow and the jobs load
        from nce_tf.analysis import channels

        summary = channels.run(arch_path, out)
        print(f"nce-tf: {summary['expanded']} layers wider, {summary['narrowed']} narrower than the original "
              f"-> {out}/channels.png", flush=True)
        return
    if argv[1] == "tradeoff":
        return _tradeoff(workdir, out)
    if argv[1] == "kendall":
        return _kendall(workdir, out)
    _need(os.path.join(workdir, "train", "model.keras"), "trained derived network (train/model.keras)")
    _stdev(workdir, out)


def _known_answer():
    """The probe against retraining on the constructed bottleneck network (nce_tf/analysis/known_answer.py)."""
    if not FLAGS.out:
        cli.fail("known-answer needs --out. Received: out=''.")
    cli.load_tensorflow()
    # loaded after the flags are checked: a bad flag fails before TensorFlow and the jobs load
    from nce_tf.analysis import known_answer

    result = known_answer.run(out_dir=FLAGS.out)
    atomic_write_text(os.path.join(FLAGS.out, "known_answer.json"), json.dumps(result, indent=1))
    atomic_write_text(os.path.join(FLAGS.out, "known_answer.md"), known_answer.markdown(result) + "\n")
    print(known_answer.markdown(result), flush=True)


def _settings_flags(workdir, **overrides):
    """The run's resolved settings (search_config.json) as command-line flags, with overrides."""
    with open(os.path.join(workdir, "search_config.json"), encoding="utf-8") as f:
        settings = {**json.load(f), **overrides}
    # Only what is a flag: the record also holds derived keys (a user model's model_sha256).
    flag_names = {f.name for cls in (TrainConfig, SearchConfig) for f in dataclasses.fields(cls)}
    args = []
    for key, value in settings.items():
        if key not in flag_names:
            continue
        if isinstance(value, bool):
            args.append(f"--{key}" if value else f"--no{key}")
        else:
            args.append(f"--{key}={value}")
    return args


def _run_plan(directory, runs):
    """Runs ``runs`` as a plan in ``directory``, ``--jobs`` at a time (TF start-up and tracing are mostly
    single-threaded, so two processes keep both cores busy); the runs done before are not redone; fails
    naming every failed run's log."""
    outcome = plans.run_plan(plans.Plan(directory, tuple(runs), name="analyze"), FLAGS.jobs)
    if not outcome.ok:
        cli.fail(f"Runs failed: {outcome.message()}. Re-run the same command to retry them.")


def _short(workdir):
    with open(os.path.join(workdir, "search_config.json"), encoding="utf-8") as f:
        saved = json.load(f)
    out = dict(DEMO if FLAGS.schedule == "demo" else {})
    if FLAGS.search_epochs:
        out.update(search_epochs=FLAGS.search_epochs,
                   search_warmup_epochs=min(saved["search_warmup_epochs"], FLAGS.search_epochs))
    if FLAGS.epochs:
        out.update(epochs=FLAGS.epochs, warmup_epochs=min(saved["warmup_epochs"], FLAGS.epochs - 1))
    return out


def _tradeoff(workdir, out):
    # loaded after the flags are checked: a bad flag fails before TensorFlow and the jobs load
    from nce_tf.analysis import tradeoff

    _need(os.path.join(workdir, "search_config.json"), "search_config.json (run nce-tf nce first)")
    points = [(mode, budget, os.path.join(out, "tradeoff", f"{mode}_{budget}"))
              for budget in FLAGS.budgets for mode in ("nce", "wrpn")]
    _run_plan(os.path.join(out, "tradeoff"), [
        plans.Run.tool(os.path.basename(run_dir), run_dir, "nce", _settings_flags(
            workdir, mode=mode, flops_ratio=float(budget), params_ratio=0, **_short(workdir)), group=mode)
        for mode, budget, run_dir in points])
    runs = []
    for mode, budget, run_dir in points:
        with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
            runs.append((mode, float(budget), json.load(f)))
    tradeoff.run(runs, out)
    print(f"nce-tf: {len(runs)} runs -> {out}/tradeoff.png", flush=True)


def _kendall(workdir, out):
    # loaded after the flags are checked: a bad flag fails before TensorFlow and the jobs load
    from nce_tf.analysis import kendall

    _need(os.path.join(workdir, "search_config.json"), "search_config.json (run nce-tf nce first)")
    logs, runs = {}, []
    for label, bits, mode in (("W2A2, NCE", 2, "nce"), ("W2A2, no expansion", 2, "tas"),
                              ("W32A32, NCE", 32, "nce"), ("W32A32, no expansion", 32, "tas")):
        run_dir = os.path.join(out, "kendall", label.replace(", ", "_").replace(" ", "_").lower())
        runs.append(plans.Run.tool(os.path.basename(run_dir), run_dir, "search", _settings_flags(
            workdir, w_bits=bits, a_bits=bits, mode=mode, tas_space="1x8", **_short(workdir)), group=mode))
        logs[label] = os.path.join(run_dir, "search_log.jsonl")
    _run_plan(os.path.join(out, "kendall"), runs)
    summary = kendall.run(logs, out, min_ratio=FLAGS.min_ratio)
    print("nce-tf: mean Kendall score of the cross-entropy's alpha gradient " + ", ".join(f"{k} {v:.3f}" for k, v in summary["mean"].items() if v is not None)
          + f" -> {out}/kendall.png", flush=True)


def _kendall_groups():
    """``kendall --group=...``: scores finished searches, group by group, over their seeds."""
    # loaded after the flags are checked: a bad flag fails before TensorFlow and the jobs load
    from nce_tf.analysis import kendall

    groups = {}
    for text in FLAGS.group:
        label, _, dirs = text.partition("=")
        paths = [d.strip() for d in dirs.split(",") if d.strip()]
        if not label.strip() or not paths or label.strip() in groups:
            cli.fail(f"Invalid --group. Received: group={text!r}. Allowed: LABEL=DIR[,DIR...], each label once.")
        for path in paths:
            if not os.path.exists(os.path.join(path, "search_log.jsonl")):
                cli.fail(f"Not a search work directory. Received: {path!r} in group={text!r} (no search_log.jsonl).")
        groups[label.strip()] = paths
    if not FLAGS.out:
        cli.fail("An output directory is required with --group. Received: out=''. Pass --out=DIR.")
    os.makedirs(FLAGS.out, exist_ok=True)
    summary = kendall.run(groups, FLAGS.out, min_ratio=FLAGS.min_ratio)
    print(kendall.table(summary))
    seeds = {label: sorted(map(str, g["seeds"])) for label, g in summary["groups"].items()}
    if len({tuple(v) for v in seeds.values()}) > 1:
        print(f"nce-tf: note: the groups' seeds differ ({seeds}); Fig. 4c compares the same seeds", flush=True)
    print(f"nce-tf: Kendall scores of {len(groups)} groups (min_ratio {FLAGS.min_ratio}) -> {FLAGS.out}/kendall.png",
          flush=True)


def _reference_runs(workdir, out):
    """The original network trained in W32A32 and W2A2 with the run's final-training settings
    (``train/config.json``; ``--epochs`` to shorten), as plan runs in ``out/w32a32``, ``out/w2a2``."""
    with open(os.path.join(workdir, "train", "config.json"), encoding="utf-8") as f:
        saved = json.load(f)
    base = TrainConfig.from_settings(saved, arch="", model=saved["resolved_model"], verbose=0)
    if FLAGS.epochs:
        base = dataclasses.replace(base, epochs=FLAGS.epochs, warmup_epochs=min(base.warmup_epochs, FLAGS.epochs - 1))
    return base, [plans.Run.job(label, "train", dataclasses.replace(
        base, workdir=os.path.join(out, label), w_bits=bits, a_bits=bits)) for label, bits in (("w32a32", 32),
                                                                                              ("w2a2", 2))]


def _stdev(workdir, out):
    import numpy as np  # with TensorFlow's modules: loaded once the flags are checked

    from nce_tf import data, sources
    from nce_tf.analysis import stdev
    from nce_tf.export.exporter import load_model

    base, runs = _reference_runs(workdir, out)
    _run_plan(out, runs)
    models = {f"original {run.key.upper()}": load_model(os.path.join(run.workdir, "model.keras")) for run in runs}
    models["NCE W2A2"] = load_model(os.path.join(workdir, "train", "model.keras"))
    source = sources.source_for(base)
    images = np.concatenate([x.numpy() for x, _ in data.make_pipeline(
        source.test.take(FLAGS.samples), source.info, training=False, batch_size=128)])
    result = stdev.run(models, images, out)
    mean_sqnr = {label: np.mean([v["sqnr_db"] for v in s.values() if v["sqnr_db"] is not None] or [np.nan])
                 for label, s in result["stats"].items()}
    print("nce-tf: mean SQNR of PACT sites (dB): " + ", ".join(f"{k} {v:.2f}" for k, v in mean_sqnr.items())
          + f" -> {out}/stdev.png", flush=True)
