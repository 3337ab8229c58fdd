"""Runs of a plan that are tiny Python children: they note when they started and ended, sleep, and
write ``metrics.json`` (the file whose presence means a run finished), or fail with an error line.

``fake(run, ...)`` keeps a planned run's key, work directory and needs and swaps its command, so a
plan's order and failures are tested in seconds without TensorFlow.
"""

import dataclasses
import json
import os

CHILD = r"""
import json, os, sys, time
workdir, seconds, fail, hold = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "fail", sys.argv[4]
start = time.time()
time.sleep(seconds)
deadline = time.time() + 120
while hold and os.path.exists(hold) and time.time() < deadline:  # a run that lasts until told to end
    time.sleep(0.05)
if fail:
    print("error: this run was told to fail", file=sys.stderr)
    sys.exit(1)
os.makedirs(workdir, exist_ok=True)
with open(os.path.join(workdir, "metrics.json"), "w") as f:
    json.dump({"start": start, "end": time.time(), "pid": os.getpid()}, f)
"""


def fake(run, seconds=0.0, fail=False, hold=""):
    """``run`` as a tiny child: ``seconds`` asleep (then until the file ``hold`` is gone), then
    ``metrics.json`` in its work directory, or an error line and exit status 1 with ``fail``."""
    argv = ("-c", CHILD, run.workdir, str(seconds), "fail" if fail else "ok", hold)
    return dataclasses.replace(run, argv=argv, spec=None, output="metrics.json", cwd=None)


def times(run):
    """``(start, end)`` of a fake run, from its ``metrics.json``."""
    with open(os.path.join(run.workdir, "metrics.json"), encoding="utf-8") as f:
        m = json.load(f)
    return m["start"], m["end"]
