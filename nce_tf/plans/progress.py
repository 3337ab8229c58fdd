"""What a planner prints: runs done / total and the time left, estimated from the runs that finished.

The time left is the sum of each unfinished run's expected wall time (a running one's less the
time it has run), divided by the runs at a time.  A run's expected time is the mean of the
finished runs of its kind and group (a study's ``nce`` searches), else of its kind; before a run
of that kind finished it is unknown, and the time left is a floor ("over ...") that names how many
runs it leaves out, or unknown when it would leave out every one.

Example:

>>> human(3725)
'1 h 02 min'
>>> estimate("train", "nce", [{"kind": "train", "group": "nce", "wall_seconds": 10.0},
...                           {"kind": "train", "group": "tas", "wall_seconds": 30.0}])
10.0
"""

import time


def human(seconds):
    """``"1 h 02 min"``, ``"4 min 05 s"``, ``"12 s"``."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def estimate(kind, group, done):
    """Expected wall time of a run of ``kind`` and ``group`` from the ``done`` records (``None``: unknown)."""
    timed = [d for d in done if d.get("wall_seconds") is not None]
    same = [d["wall_seconds"] for d in timed if d.get("kind") == kind and d.get("group", d.get("method")) == group]
    pool = same or [d["wall_seconds"] for d in timed if d.get("kind") == kind]
    return sum(pool) / len(pool) if pool else None


def time_left(pending, running, done, jobs, now=None):
    """``"about 4 min 05 s left"``, ``"over 4 min 05 s left (3 runs not timed yet)"`` or ``"time left
    unknown yet"``.

    Args:
        pending: runs not started; running: ``{key: (run, start time)}``; done: finished records.
    """
    now = time.time() if now is None else now
    left, untimed = 0.0, 0
    unfinished = [(r, 0.0) for r in pending] + [(r, now - t0) for r, t0 in running.values()]
    for run, elapsed in unfinished:
        expected = estimate(run.kind, run.group, done)
        if expected is None:
            untimed += 1
        else:
            left += max(0.0, expected - elapsed)
    if untimed and untimed == len(unfinished):
        return "time left unknown yet"
    if untimed:
        return f"over {human(left / jobs)} left ({untimed} run{'s' * (untimed > 1)} of a kind not timed yet)"
    return f"about {human(left / jobs)} left"


def last_line(path):
    """The last non-empty line of a log (a failed run's reason), ``"?"`` without one."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [ln.strip() for ln in f if ln.strip()]
    except OSError:
        return "?"
    return lines[-1] if lines else "?"
