r"""Per-run records under results/ and the README tables generated from them.

Examples:

    nce-tf results collect runs/premise/w2a2_s0 runs/premise/w2a2_s1 --out=results/premise_trained.jsonl
    nce-tf results readme            # rewrite every generated README table from results/
    nce-tf results readme --check    # compare only: exit status 1 when a table drifted from its records

`collect` appends one JSON line per finished run directory (nce-tf train, nce, search or compress: kind, model,
bits, seeds, widths, costs, accuracy, settings, provenance) to the --out file; a run already in it is
not added twice, and a run without provenance (made before nce-tf recorded it) is refused; a directory
whose run has not finished is an error, or with --skip_unfinished a line saying it was left out (a queue
still running). `readme` regenerates every block of README.md between <!-- NAME:begin --> and
<!-- NAME:end --> markers whose NAME is a table of nce_tf/results/tables.py (from its records file under
results/) or of nce_tf/results/summary_tables.py (from the analysis file it names); it reports the
blocks declared legacy there (made without per-run records) and refuses any other. See
nce_tf/results/. From a checkout, python tools/results.py takes the same arguments.
"""

import os
import sys

from absl import flags

from nce_tf import cli, provenance

SUBCOMMANDS = ("collect", "readme")
flags.DEFINE_string("out", "", "collect: the records file to append to (results/NAME.jsonl; required).")
flags.DEFINE_boolean("skip_unfinished", False, "collect: leave out the directories whose run has not finished "
                     "(a line each) instead of refusing them.")
flags.DEFINE_boolean("check", False, "readme: write nothing; exit status 1 when a generated table differs from "
                     "its records.")
flags.DEFINE_string("readme", "", "readme: the README to update (default: the checkout's README.md, else "
                    "./README.md).")
flags.DEFINE_string("results", "", "readme: the directory of the records files (default: the checkout's results/, "
                    "else ./results).")
FLAGS = flags.FLAGS


def _root():
    return provenance.checkout_root() or os.getcwd()


def main(argv):
    if len(argv) < 2 or argv[1] not in SUBCOMMANDS:
        cli.fail(f"Expected a subcommand. Received: {argv[1:]!r}. Allowed: {', '.join(SUBCOMMANDS)}.")
    # loaded after the flags are checked: a bad flag fails before TensorFlow and the jobs load
    from nce_tf.results import readme, records

    if argv[1] == "collect":
        if len(argv) < 3:
            cli.fail("Expected one or more run directories. Received: none.")
        if not FLAGS.out:
            cli.fail("A records file is required. Received: out=''. Pass --out=results/NAME.jsonl.")
        dirs = argv[2:]
        if FLAGS.skip_unfinished:  # a missing directory is still refused below, by record_of
            unfinished = {d for d in dirs if os.path.isdir(d) and not records.is_finished(d)}
            for d in sorted(unfinished):
                print(f"nce-tf: not finished, left out: {d}", flush=True)
            dirs = [d for d in dirs if d not in unfinished]
        found = [records.record_of(d, root=_root()) for d in dirs]  # every run read before anything is written
        added, skipped = records.append_records(FLAGS.out, found)
        print(f"nce-tf: {added} records added, {skipped} already there -> {FLAGS.out}", flush=True)
        return
    if len(argv) > 2:
        cli.fail(f"readme takes no run directories. Received: {argv[2:]!r}.")
    path = FLAGS.readme or os.path.join(_root(), "README.md")
    report = readme.update_readme(path, FLAGS.results or os.path.join(_root(), "results"), check=FLAGS.check)
    for name, status, detail in report:
        print(f"{name}: {status} ({detail})", flush=True)
    drifted = [name for name, status, _ in report if status == "drifted"]
    if drifted:
        print(f"error: README tables differ from their records: {', '.join(drifted)}. "
              f"Run nce-tf results readme to regenerate them.", file=sys.stderr)
        raise SystemExit(1)
