"""Runs a study: its searches and trainings, ``jobs`` at a time, resumable, with progress.

Each run is a child process (:mod:`nce_tf.study.job`) with its output in ``<run>.log``; when it
exits cleanly the runner writes ``<run>.done.json`` (the run's result and wall time).  A run
with that file is never started again, so a killed study re-run continues where it stopped;
a run that was cut off mid-way resumes from its own checkpoints.  A run that fails does not
stop the others (except the trainings of a failed search); the study ends with exit status 1
naming every failed run and its log, and a re-run retries them.

After every finished run the results (``study.json``, ``study.csv``, ``summary.md``,
``study.png``; :mod:`nce_tf.study.results`) are rewritten, so a study stopped early can be read.

Example::

    from nce_tf.search import SearchConfig
    from nce_tf.study import StudyConfig, run_study
    from nce_tf.train import TrainConfig
    results = run_study(StudyConfig(workdir="runs/study", methods=("random", "nce"), searches=2, trainings=2),
                        TrainConfig(workdir="unused", model="resnet8", w_bits=2, a_bits=2, epochs=10),
                        SearchConfig(search_warmup_epochs=2, search_epochs=4))
"""

import json
import os
import signal
import subprocess
import time

from nce_tf import child
from nce_tf.errors import UsageError
from nce_tf.io_utils import atomic_write_json
from nce_tf.study import results as results_lib
from nce_tf.study.plan import plan

CONFIG_FILE = "study_config.json"
LOCK_FILE = ".study.lock"


class StudyFailed(RuntimeError):
    """Some runs of a study failed (their logs say why); a re-run retries them."""


def run_settings(study, train_config, search_config):
    """What every run of the study shares; a study directory holds runs of one setting only."""
    train = {k: v for k, v in train_config.run_settings().items() if k not in ("seed", "arch")}
    search = {k: v for k, v in search_config.to_dict().items() if k != "mode"}
    return {"train": train, "search": search, "tas_width_ratios": study.tas_width_ratios}


def _flat(settings):
    """``{"train.epochs": ..., "search.arch_lr": ..., "tas_width_ratios": ...}``: one key per setting."""
    flat = {f"{part}.{k}": v for part in ("train", "search") for k, v in settings.get(part, {}).items()}
    flat["tas_width_ratios"] = settings.get("tas_width_ratios")
    return flat


def _check_settings(workdir, settings, study):
    path = os.path.join(workdir, CONFIG_FILE)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            saved, now = _flat(json.load(f).get("settings", {})), _flat(settings)
        for key in sorted(set(saved) | set(now)):
            if saved.get(key) != now.get(key):
                raise UsageError(f"The study in this work directory ran its runs with {key}={saved.get(key)!r}. "
                                 f"Received: {key}={now.get(key)!r}, workdir={workdir!r}. Allowed: the same run "
                                 "settings, or another --workdir (methods, searches, trainings and seeds may change).")
    atomic_write_json(path, {"study": study.to_dict(), "settings": settings})


def check_fits(train_config):
    """Refuses a dataset whose kind (CIFAR-sized or ImageNet-sized images) is not the zoo model's."""
    from nce_tf import data
    from nce_tf import sources
    from nce_tf.train.config import DEFAULT_MODEL

    model = train_config.model or DEFAULT_MODEL
    spec = sources.get_spec(model)
    info = data.source_for(train_config).info
    if spec.kind in ("cifar", "imagenet") and info.kind != spec.kind:
        size = "x".join(str(s) for s in info.image_shape[:2])
        raise UsageError(f"The dataset does not fit the model: {model} takes {spec.kind}-sized images "
                         f"({'x'.join(str(s) for s in spec.input_shape[:2])}), {info.name} has {size} images. "
                         f"Received: model={model!r}, dataset={train_config.dataset!r}.")
    return info


class _Lock:
    """One study process per work directory: a second one would start the same runs twice."""

    def __init__(self, workdir):
        self.path = os.path.join(workdir, LOCK_FILE)

    def __enter__(self):
        if os.path.exists(self.path):
            try:
                with open(self.path, encoding="utf-8") as f:
                    pid = int(f.read().strip() or 0)
                os.kill(pid, 0)
            except (ValueError, ProcessLookupError, PermissionError, OSError):
                pid = 0
            if pid and pid != os.getpid():
                raise UsageError(f"Another study process (pid {pid}) is running in this work directory. "
                                 f"Received: workdir={os.path.dirname(self.path)!r}.")
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(str(os.getpid()))
        return self

    def __exit__(self, *exc):
        if os.path.exists(self.path):
            os.unlink(self.path)


def _die_with_parent():
    # A run must not outlive its study process (a re-run would start it a second time beside it).
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _launch(run):
    os.makedirs(os.path.dirname(run.workdir), exist_ok=True)
    spec_path = run.workdir + ".job.json"
    spec = {"kind": run.kind, "train_config": run.train_config.to_dict(),
            "search_config": run.search_config.to_dict() if run.search_config is not None else None}
    atomic_write_json(spec_path, spec)
    command, env = child.python_module("nce_tf.study.job", spec_path, extra_env={"PYTHONUNBUFFERED": "1"})
    log = open(run.log_path, "a", encoding="utf-8")
    log.write(f"\n== nce-tf study: {run.key} started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    log.flush()
    proc = subprocess.Popen(command, stdout=log,
                            stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent)
    return proc, log


class _Finished:
    """What ``_launch`` returns, for a run that already ran in this process."""

    def __init__(self, returncode):
        self.returncode = returncode

    def poll(self):
        return self.returncode

    def terminate(self):
        pass

    def wait(self, timeout=None):
        return self.returncode


def _run_inline(run):
    import contextlib
    import traceback

    import keras

    from nce_tf.study.job import execute

    os.makedirs(os.path.dirname(run.workdir), exist_ok=True)
    log = open(run.log_path, "a", encoding="utf-8")
    code = 0
    with contextlib.redirect_stdout(log):
        try:
            keras.backend.clear_session()
            execute(run.kind, run.train_config, run.search_config)
        except Exception as e:  # recorded like a child's failure: the log holds the reason
            traceback.print_exc(file=log)
            log.write(f"error: {' '.join(str(e).split())}\n")
            code = 2 if isinstance(e, UsageError) else 1
    log.flush()
    return _Finished(code), log


def _last_line(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [ln.strip() for ln in f if ln.strip()]
    except OSError:
        return "?"
    return lines[-1] if lines else "?"


def _human(seconds):
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def _estimate(run, done):
    """Expected wall time of ``run``: the mean of finished runs of its kind and method (else of its kind)."""
    same = [d["wall_seconds"] for d in done.values() if d["kind"] == run.kind and d["method"] == run.method]
    kind = [d["wall_seconds"] for d in done.values() if d["kind"] == run.kind]
    pool = same or kind
    return sum(pool) / len(pool) if pool else None


def run_study(study, train_config, search_config, verbose=True, in_process=False, summarize_only=False):
    """Runs (or continues) a study; returns the results written to ``study.json``.

    Args:
        study: a :class:`nce_tf.study.StudyConfig`.
        train_config: the :class:`nce_tf.train.TrainConfig` of every run (model, data, bits,
            training schedule); its ``workdir`` and ``seed`` are replaced per run.
        search_config: the :class:`nce_tf.search.SearchConfig` of every search; its ``mode``
            is replaced by each method.
        verbose: print a line per finished run with the time left.
        in_process: run every run in this process, one at a time, instead of ``jobs`` child
            processes (for notebooks and tests; a crash of one run then ends the study).
        summarize_only: start no run; write the results of the runs finished so far (allowed
            beside a running study process: every file is replaced atomically).

    Raises:
        UsageError: bad settings, a dataset that does not fit the model, a work directory that
            holds a study with other run settings.
        StudyFailed: some runs failed (the others finished and are in the results).
    """
    study = study.validate()
    if train_config.arch:
        raise UsageError(f"A study derives its own architectures. Received: arch={train_config.arch!r}.")
    import dataclasses

    train_config = dataclasses.replace(train_config, workdir=train_config.workdir or study.workdir).validate()
    search_config = search_config.validate()
    check_fits(train_config)
    from nce_tf.train.config import prepare_workdir

    if summarize_only and not os.path.exists(os.path.join(study.workdir, CONFIG_FILE)):
        raise UsageError(f"No study in this work directory. Received: workdir={study.workdir!r}.")
    workdir = prepare_workdir(study.workdir)
    runs = plan(dataclasses.replace(study, workdir=workdir), train_config, search_config)
    if summarize_only:
        return results_lib.write(workdir, study, runs)
    with _Lock(workdir):
        _check_settings(workdir, run_settings(study, train_config, search_config), study)
        failed = _execute(runs, study, workdir, verbose, in_process)
        out = results_lib.write(workdir, study, runs)
    if failed:
        raise StudyFailed("; ".join(f"{key} failed ({why}), see {log}" for key, why, log in failed))
    return out


def _execute(runs, study, workdir, verbose, in_process):
    jobs = 1 if in_process else study.jobs
    done = results_lib.finished(runs)
    pending = [r for r in runs if r.key not in done]
    total, already = len(runs), len(done)
    if verbose:
        print(f"nce-tf study: {total} runs, {already} finished before, {len(pending)} to go, {jobs} at a time",
              flush=True)
    running, failed, blocked = {}, [], set()
    try:
        while pending or running:
            for run in list(pending):
                if len(running) >= jobs:
                    break
                if run.needs in blocked:
                    pending.remove(run)
                    blocked.add(run.key)
                    failed.append((run.key, f"its search {run.needs} failed", run.log_path))
                    continue
                if run.needs is None or run.needs in done:
                    pending.remove(run)
                    t0 = time.time()
                    proc, log = _run_inline(run) if in_process else _launch(run)
                    running[run.key] = (run, proc, log, t0)
            if not running:
                break
            if not in_process:
                time.sleep(0.5)
            for key, (run, proc, log, t0) in list(running.items()):
                if proc.poll() is None:
                    continue
                log.close()
                del running[key]
                wall = time.time() - t0
                if proc.returncode != 0:
                    blocked.add(key)
                    failed.append((key, _last_line(run.log_path), run.log_path))
                    if verbose:
                        print(f"nce-tf study: {key} FAILED after {_human(wall)}: {_last_line(run.log_path)}",
                              flush=True)
                    continue
                record = results_lib.run_record(run, wall)
                atomic_write_json(run.done_path, record)
                done[key] = record
                if verbose:
                    print(_progress(run, record, done, pending, running, total, jobs), flush=True)
                results_lib.write(workdir, study, runs, figure=False)
    except BaseException:
        for run, proc, log, _ in running.values():
            proc.terminate()
        for run, proc, log, _ in running.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
        raise
    return failed


def _progress(run, record, done, pending, running, total, jobs):
    what = (f"{record['test_accuracy'] * 100:.2f}%" if run.kind == "train"
            else f"MACs {record['macs_ratio']:.3f}x, PARAMs {record['params_ratio']:.3f}x"
                 + (f", {len(record['expanded'])} layers expanded" if run.method == "nce" else ""))
    now = time.time()
    left = 0.0
    unknown = False
    for r in pending:
        est = _estimate(r, done)
        unknown |= est is None
        left += est or 0.0
    for r, _, _, t0 in running.values():
        est = _estimate(r, done)
        unknown |= est is None
        left += max(0.0, (est or 0.0) - (now - t0))
    eta = "time left unknown yet" if unknown else f"about {_human(left / jobs)} left"
    return (f"nce-tf study: [{len(done)}/{total}] {run.key}: {what} in {_human(record['wall_seconds'])}; "
            f"{len(pending) + len(running)} to go, {eta}")
