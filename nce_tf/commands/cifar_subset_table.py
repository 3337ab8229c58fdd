r"""Measure ResNet-20 on the real CIFAR-10 subset: W32A32, W2A2 (from scratch, from the float network, and
distilled from it), W2A2 + NCE, TAS, WRPN, 3 seeds each.

Example:

    nce-tf cifar-subset-table --out=runs/cifar_subset --jobs=2 --update_readme

Each run is `nce-tf train` or `nce-tf nce` with a preset of cifar_subset/ and --seed; a run whose
work directory already holds metrics.json is not redone, so an interrupted table resumes. The
float-init rows start from the W32A32 run of the same seed (passed as --init_from and --teacher);
each waits for that run, which starts first.
Writes OUT/table.md (mean +- std of the test accuracy, MACs and PARAMs of the trained networks) and,
with --update_readme, the same table into README.md between its cifar-subset-table markers.
The runs start in the repository root of a checkout (the presets' data path is relative to it),
else in the working directory. From a checkout, python tools/cifar_subset_table.py takes the same
flags.
"""

import collections
import json
import os
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from absl import flags

from nce_tf import child, cli, flagfiles

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


Run = collections.namedtuple("Run", "label tool preset seed workdir extra needs")


def workdir_of(out, preset, seed):
    return os.path.join(out, f"{preset}_s{seed}")


def plan(out, seeds):
    """Every run of the table in the order they start: a :data:`Run` with the flags naming the runs it
    starts from (``extra``) and their work directories (``needs``, runs planned before it)."""
    runs, planned = [], set()
    for label, tool, preset, *uses in CONFIGS:
        uses = uses[0] if uses else {}
        for seed in seeds:
            needs = sorted({workdir_of(out, dep, seed) for dep in uses.values()})
            assert planned.issuperset(needs), f"{preset} needs a run planned after it"
            extra = [f"{flag}={workdir_of(out, dep, seed)}" for flag, dep in uses.items()]
            runs.append(Run(label, tool, preset, seed, workdir_of(out, preset, seed), extra, needs))
            planned.add(runs[-1].workdir)
    return runs


def run_all(runs, jobs):
    """Runs ``runs`` ``jobs`` at a time in plan order, each after the runs it needs; returns the errors.

    A run waits for its needs inside its worker; they were submitted before it, so they are running
    or done by the time it is given a worker (no deadlock)."""
    futures = {}

    def after(needs, run):
        for need in needs:
            if futures[need].result():
                return f"Run not started: the run it starts from failed. Received: {need}"
        return _run(run)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for run in runs:
            futures[run.workdir] = pool.submit(after, run.needs, run)
        return [e for e in (f.result() for f in futures.values()) if e]


def _run(run):
    label, tool, flagfile, seed, workdir = run[:5]
    if os.path.exists(os.path.join(workdir, "metrics.json")):
        return None
    print(f"nce-tf: {label}, seed {seed}", flush=True)
    cmd, env = child.python_module("nce_tf", tool, f"--flagfile=cifar_subset/{flagfile}", f"--seed={seed}",
                                   *run.extra, f"--workdir={workdir}", "--verbose=0")
    start = time.time()
    proc = subprocess.run(cmd, cwd=_root(), env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return f"Run failed ({(proc.stderr.strip().splitlines() or ['?'])[-1]}). Received: {' '.join(cmd[3:])}"
    print(f"  done in {time.time() - start:.0f} s: {workdir}", flush=True)
    return None


def _root():
    return flagfiles.checkout_root() or os.getcwd()


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
        errors = run_all(plan(out, seeds), FLAGS.jobs)
        if errors:
            cli.fail(errors[0])
    rows = []
    for label, tool, flagfile, *_ in CONFIGS:
        results = []
        for seed in seeds:
            workdir = workdir_of(out, flagfile, seed)
            if not os.path.exists(os.path.join(workdir, "metrics.json")):
                continue
            with open(os.path.join(workdir, "metrics.json"), encoding="utf-8") as f:
                results.append(json.load(f))
        rows.append((label, results))
    lines = [
        f"| ResNet-20, CIFAR-10 subset ({len(seeds)} seeds) | test accuracy (%) | MACs (M) | PARAMs (K) |",
        "|---|---|---|---|",
    ]
    for label, results in rows:
        if not results:
            lines.append(f"| {label} | not measured yet | | |")
            continue
        if len(results) != len(seeds):
            label = f"{label} ({len(results)} of {len(seeds)} seeds)"
        lines.append(f"| {label} | {_fmt([r['test_accuracy'] for r in results], 100)} | "
                     f"{_fmt([r['macs'] for r in results], 1e-6)} | {_fmt([r['params'] for r in results], 1e-3, 1)} |")
    table = "\n".join(lines) + "\n"
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "table.md"), "w", encoding="utf-8") as f:
        f.write(table)
    print(table, flush=True)
    if FLAGS.update_readme:
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

