"""One planner per plan directory: a second one would start the same runs twice beside the first.

The lock is ``DIR/.plan.lock``, held with ``flock`` while the planner runs and holding its pid (for
the error).  The kernel drops a ``flock`` when its process dies, so a killed planner leaves no lock
that blocks the next sitting; the file is removed on a clean exit.

Example::

    with PlanLock("runs/study", "study"):
        ...  # another process entering PlanLock("runs/study") now gets a one-line UsageError
"""

import fcntl
import os

from nce_tf.errors import UsageError

LOCK_FILE = ".plan.lock"


class PlanLock:
    """Context manager holding ``directory``'s plan lock (``name``: what runs there, for the error)."""

    def __init__(self, directory, name="plan"):
        self.path = os.path.join(directory, LOCK_FILE)
        self.name = name
        self._file = None

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        while True:
            f = open(self.path, "a+", encoding="utf-8")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                pid = f.read().strip() or "?"
                f.close()
                raise UsageError(f"Another {self.name} process (pid {pid}) is running in this directory. "
                                 f"Received: workdir={os.path.dirname(self.path)!r}.") from None
            # The holder before us may have removed the file after we opened it: lock the file on disk.
            if os.path.exists(self.path) and os.path.samestat(os.fstat(f.fileno()), os.stat(self.path)):
                break
            f.close()
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._file = f
        return self

    def __exit__(self, *exc):
        os.unlink(self.path)
        self._file.close()
        self._file = None
