r"""Measure ResNet-20 on the real CIFAR-10 subset: W32A32; W2A2 from scratch, from the float network and
distilled from it; the widths NCE and TAS find from the trained W2A2 network, and WRPN's, trained as
the W2A2 baseline is; 3 seeds each.

Example:

    nce-tf cifar-subset-table --out=runs/cifar_subset --jobs=2 --update_readme

Each run is `nce-tf train`, `search` or `nce` with a preset of cifar_subset/ and --seed; a run whose
work directory already holds its result is not redone, so an interrupted table resumes. The
float-init rows start from the W32A32 run of the same seed (--init_from, --teacher). The NCE and TAS
rows are the premise recipe (issue 25): a search from the W2A2 float-init network of the same seed
(`nce_from_trained`, `tas_from_trained`), then its widths trained from scratch with the W2A2 row's
preset (`w2a2 --arch=...`), so they differ from the W2A2 row in their widths alone. Each run waits for
the runs it starts from; when a run fails, the runs that start from it are skipped and the others go
on. The runs are a plan of the run planner (nce_tf.plans): --jobs processes at a time, a line per run
with runs done / total and the time left, each run's output in OUT/<run>.log, its record in
OUT/<run>.done.json and OUT/records.jsonl, one table process per OUT at a time. Writes OUT/table.md,
the `cifar-subset` table (nce_tf.results.tables) made from the records of this plan's runs; with
--update_readme, those records are added to the checkout's results/cifar_subset.jsonl and every
generated README table is rewritten (`nce-tf results readme`).
The runs start in the repository root of a checkout (the presets' data path is relative to it), else
in the working directory. From a checkout, python tools/cifar_subset_table.py takes the same flags.
"""

import dataclasses
import os

from absl import flags

from nce_tf import cli, plans, provenance


@dataclasses.dataclass(frozen=True)
class Row:
    """A row of the table: its final runs' tool and preset; ``uses``: flags naming the run of the same
    seed of another preset (``{"--init_from": "w32a32"}``); ``search``: the preset of a search (from the
    run ``uses`` names) whose ``arch.json`` the training takes."""

    label: str
    tool: str
    preset: str
    uses: tuple = ()
    search: str = ""

    def key(self):
        return f"{self.preset}_{self.search}" if self.search else self.preset


ROWS = (
    Row("W32A32", "train", "w32a32"),
    Row("W2A2, from scratch", "train", "w2a2"),
    Row("W2A2 float init", "train", "w2a2_float_init", (("--init_from", "w32a32"),)),
    Row("W2A2 float init + KD", "train", "w2a2_float_init_kd", (("--init_from", "w32a32"), ("--teacher", "w32a32"))),
    Row("W2A2, NCE's widths (searched from the trained W2A2 network)", "train", "w2a2",
        (("--init_from", "w2a2_float_init"),), search="nce_from_trained"),
    Row("W2A2, TAS's widths (1X, 8 candidates, searched from the trained W2A2 network)", "train", "w2a2",
        (("--init_from", "w2a2_float_init"),), search="tas_from_trained"),
    Row("W2A2, WRPN's widths (uniform, original FLOPs)", "nce", "wrpn_w2a2"),
)
flags.DEFINE_string("out", "runs/cifar_subset", "Directory of the runs and of table.md.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of every configuration.")
flags.DEFINE_integer("jobs", 1, "Runs at a time (each its own process); at most the machine's cores.")
flags.DEFINE_boolean("update_readme", False, "Add the records to results/cifar_subset.jsonl and rewrite the "
                     "README's generated tables.")
flags.DEFINE_boolean("finished_only", False, "Start no run: tabulate the runs that have finished (a partial "
                     "table names its seeds), e.g. while the full table is still running.")
FLAGS = flags.FLAGS


def workdir_of(out, key, seed):
    return os.path.join(out, f"{key}_s{seed}")


def plan(out, seeds):
    """Every run of the table as a :class:`nce_tf.plans.Plan`, in the order they start: ``nce-tf train``,
    ``search`` or ``nce`` with its preset and seed, plus the flags naming the runs it starts from
    (``--init_from``, ``--teacher``; a searched row's training ``--arch``), which it ``needs``. The runs
    start in :func:`_root`."""
    runs, planned = [], set()
    for row in ROWS:
        for seed in seeds:
            extra = [f"{flag}={workdir_of(out, dep, seed)}" for flag, dep in row.uses]
            needs = sorted({f"{dep}_s{seed}" for _, dep in row.uses})
            if row.search:
                key = f"{row.search}_s{seed}"
                if key not in planned:
                    runs.append(plans.Run.tool(key, workdir_of(out, row.search, seed), "search",
                                               [f"--flagfile=cifar_subset/{row.search}", f"--seed={seed}", *extra],
                                               needs=needs, group=f"search: {row.search}", cwd=_root()))
                    planned.add(key)
                extra, needs = [f"--arch={os.path.join(workdir_of(out, row.search, seed), 'arch.json')}"], [key]
            runs.append(plans.Run.tool(f"{row.key()}_s{seed}", workdir_of(out, row.key(), seed), row.tool,
                                       [f"--flagfile=cifar_subset/{row.preset}", f"--seed={seed}", *extra],
                                       needs=needs, group=row.label, cwd=_root()))
    return plans.Plan(out, tuple(runs), name="cifar-subset-table")


def _root():
    return provenance.checkout_root() or os.getcwd()


def main(argv):
    cli.no_positional(argv)
    seeds = [int(s) for s in FLAGS.seeds]
    out = os.path.abspath(FLAGS.out)
    if not 1 <= FLAGS.jobs <= (os.cpu_count() or 1):
        cli.fail(f"Invalid jobs. Received: jobs={FLAGS.jobs}. Allowed: 1..{os.cpu_count() or 1} "
                 "(this machine's cores).")
    root = provenance.checkout_root()
    if FLAGS.update_readme and root is None:  # before any run: the records would have nowhere to go
        cli.fail(f"--update_readme works in a checkout. Received: working directory {os.getcwd()!r}")
    table_plan = plan(out, seeds)
    if not FLAGS.finished_only:
        outcome = plans.run_plan(table_plan, FLAGS.jobs)  # another table process in --out: one line
        if not outcome.ok:
            cli.fail(f"Runs failed: {outcome.message()}. Re-run the same command to retry them.")
    # the results layer reads records only (no TensorFlow): loaded once the runs are done
    from nce_tf.results import readme, records, tables

    path = os.path.join(out, plans.RECORDS_FILE)
    if not os.path.isfile(path):
        cli.fail(f"No run of the table has finished yet. Received: out={out!r}")
    # only this plan's runs (an --out may hold runs of an earlier recipe or other seeds)
    planned = {run.key for run in table_plan.runs}
    mine = [rec for rec in records.read_records(path) if rec["run"] in planned]
    if not mine:
        cli.fail(f"No run of the table has finished yet. Received: out={out!r}, seeds={seeds}")
    table = tables.TABLES["cifar-subset"].render(mine)
    with open(os.path.join(out, "table.md"), "w", encoding="utf-8") as f:
        f.write(table)
    print(table, flush=True)
    if FLAGS.update_readme:
        added, _ = records.append_records(os.path.join(root, "results", "cifar_subset.jsonl"), mine)
        report = readme.update_readme(os.path.join(root, "README.md"), os.path.join(root, "results"))
        print(f"{added} records added to results/cifar_subset.jsonl; README: "
              + ", ".join(f"{name} {status}" for name, status, _ in report), flush=True)
