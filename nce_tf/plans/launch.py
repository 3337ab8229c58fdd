"""Starting a run: a child process writing into the run's log, or (a job spec, ``in_process``) this process.

Every sitting of a run appends to ``<workdir>.log`` under a line ``== nce-tf NAME: KEY started TIME``,
so a log shows how often the run was started.  A child dies with its planner (``PR_SET_PDEATHSIG``):
a run must not outlive the planner, or the next sitting would start it a second time beside it.
"""

import ctypes
import os
import signal
import subprocess
import time

from nce_tf.cli import child
from nce_tf.io_utils import atomic_write_json
from nce_tf.plans.job import run_inline


def _die_with_parent():
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Finished:
    """What :func:`start` returns for a run that already ran in this process (a ``Popen``'s interface)."""

    def __init__(self, returncode):
        self.returncode = returncode

    def poll(self):
        return self.returncode

    def terminate(self):
        pass

    def kill(self):
        pass

    def wait(self, timeout=None):
        return self.returncode


def start(run, name, in_process=False):
    """Starts ``run`` (a :class:`nce_tf.plans.Run`); returns a ``Popen`` (or :class:`Finished`)."""
    os.makedirs(os.path.dirname(run.workdir), exist_ok=True)
    with open(run.log_path, "a", encoding="utf-8") as log:
        log.write(f"\n== nce-tf {name}: {run.key} started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    if in_process and run.spec is not None:
        return Finished(run_inline(run.spec, run.log_path))
    argv = list(run.argv)
    if run.spec is not None:
        atomic_write_json(run.spec_path, run.spec)
        argv.append(run.spec_path)
    command, env = child.python(*argv, extra_env={"PYTHONUNBUFFERED": "1"})
    with open(run.log_path, "a", encoding="utf-8") as log:  # the child holds its own copy of the descriptor
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=run.cwd,
                                preexec_fn=_die_with_parent)


def stop(procs):
    """Terminates running children, then kills those still alive after 30 s."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
