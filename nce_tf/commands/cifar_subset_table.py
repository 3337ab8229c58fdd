r"""Measure ResNet-20 on the real CIFAR-10 subset: W32A32, W2A2 (from scratch, from the float network, and
distilled from it), W2A2 + NCE, TAS, WRPN, 3 seeds each.

Example:

    nce-tf cifar-subset-table --out=runs/cifar_subset --jobs=2 --update_readme

Each run is `nce-tf train` or `nce-tf nce` with a preset of cifar_subset/ and --seed; a run whose
work directory already holds metrics.json is not redone, so an interrupted table resumes. The
float-init rows start from the W32A32 run of the same seed (passed as --init_from and --teacher);
each waits for that run, which starts first; when a run fails, the runs that start from it are skipped
and the others go on. The runs are a plan of the run planner (nce_tf.plans): --jobs processes at a
time, a line per run with runs done / total and the time left, each run's output in OUT/<run>.log,
its record in OUT/<run>.done.json and OUT/records.jsonl, one table process per OUT at a time.
Writes OUT/table.md (mean +- std of the test accuracy, MACs and PARAMs of the trained networks) and,
with --update_readme, the same table into README.md between its cifar-subset-table markers.
The runs start in the repository root of a checkout (the presets' data path is relative to it),
else in the working directory. From a checkout, python tools/cifar_subset_table.py takes the same
flags.
"""

import json
import os
import statistics

from absl import flags

from nce_tf import cli, plans, provenance

CONFIGS = (  # (label, command, preset under cifar_subset/[, {flag: the preset whose run of the same seed it names}])
    ("W32A32", "train", "w32a32"),
    ("W2A2, no NCE", "train", "w2a2"),
    ("W2A2 float init", "train", "w2a2_float_init", {"--init_from": "w32a32"}),
    ("W2A2 float init + KD", "train", "w2a2_float_init_kd", {"--init_from": "w32a32", "--teacher": "w32a32"}),
    ("W2A2 + NCE (original FLOPs and PARAMs)", "nce", "nce_w2a2"),
    ("W2A2 TAS (1X, 8 candidates, no expansion)", "nce", "tas_w2a2"),
    ("W2A2 WRPN (uniform width, original FLOPs)", "nce", "wrpn_w2a2"),
)
BEGIN, END = "<!-- cifar-subset-table:begin -->", "<!-- cifar-subset-table:end -->"
flags.DEFINE_string("out", "runs/cifar_subset", "Directory of the runs and of table.md.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of every configuration.")
flags.DEFINE_integer("jobs", 1, "Runs at a time (each its own process); at most the machine's cores.")
flags.DEFINE_boolean("update_readme", False, "Write the table into README.md between its markers.")
flags.DEFINE_boolean("finished_only", False, "Start no run: tabulate the runs that have finished (a partial "
                     "table names its seed counts), e.g. while the full table is still running.")
FLAGS = flags.FLAGS


def workdir_of(out, preset, seed):
    return os.path.join(out, f"{preset}_s{seed}")


def plan(out, seeds):
    """Every run of the table as a :class:`nce_tf.plans.Plan`, in the order they start: ``nce-tf train``
    or ``nce`` with its preset and seed, plus the flags naming the runs it starts from (``--init_from``,
    ``--teacher``: the W32A32 run of its seed), which it ``needs``. The runs start in :func:`_root`."""
    runs = []
    for label, tool, preset, *uses in CONFIGS:
        uses = uses[0] if uses else {}
        for seed in seeds:
            extra = [f"{flag}={workdir_of(out, dep, seed)}" for flag, dep in uses.items()]
            needs = sorted({f"{dep}_s{seed}" for dep in uses.values()})
            runs.append(plans.Run.tool(f"{preset}_s{seed}", workdir_of(out, preset, seed), tool,
                                       [f"--flagfile=cifar_subset/{preset}", f"--seed={seed}", *extra],
                                       needs=needs, group=label, cwd=_root()))
    return plans.Plan(out, tuple(runs), name="cifar-subset-table")


def _root():
    return provenance.checkout_root() or os.getcwd()


def _fmt(values, scale=1.0, digits=2):
    m = statistics.mean(values) * scale
    s = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{m:.{digits}f} +- {s:.{digits}f}"


def main(argv):
    cli.no_positional(argv)
    seeds = [int(s) for s in FLAGS.seeds]
    out = os.path.abspath(FLAGS.out)
    if not 1 <= FLAGS.jobs <= (os.cpu_count() or 1):
        cli.fail(f"Invalid jobs. Received: jobs={FLAGS.jobs}. Allowed: 1..{os.cpu_count() or 1} (this machine's cores).")
    if not FLAGS.finished_only:
        outcome = plans.run_plan(plan(out, seeds), FLAGS.jobs)  # another table process in --out: one line
        if not outcome.ok:
            cli.fail(f"Runs failed: {outcome.message()}. Re-run the same command to retry them.")
    table = _table(out, seeds)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "table.md"), "w", encoding="utf-8") as f:
        f.write(table)
    print(table, flush=True)
    if FLAGS.update_readme:
        _update_readme(table)


def _table(out, seeds):
    """The markdown table of the finished runs: a row per configuration, mean +- std over its seeds."""
    lines = [
        f"| ResNet-20, CIFAR-10 subset ({len(seeds)} seeds) | test accuracy (%) | MACs (M) | PARAMs (K) |",
        "|---|---|---|---|",
    ]
    for label, _, preset, *_ in CONFIGS:
        results = []
        for seed in seeds:
            path = os.path.join(workdir_of(out, preset, seed), "metrics.json")
            if os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    results.append(json.load(f))
        if not results:
            lines.append(f"| {label} | not measured yet | | |")
            continue
        if len(results) != len(seeds):
            label = f"{label} ({len(results)} of {len(seeds)} seeds)"
        lines.append(f"| {label} | {_fmt([r['test_accuracy'] for r in results], 100)} | "
                     f"{_fmt([r['macs'] for r in results], 1e-6)} | {_fmt([r['params'] for r in results], 1e-3, 1)} |")
    return "\n".join(lines) + "\n"


def _update_readme(table):
    path = os.path.join(_root(), "README.md")
    if not os.path.isfile(path):
        cli.fail(f"No README.md to update. Received: {path!r} (--update_readme works in a checkout).")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        cli.fail(f"README.md has no table markers. Received: {path!r}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{head}{BEGIN}\n{table}{END}{tail}")
