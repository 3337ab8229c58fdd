"""Keeps a long plan's finished runs across machines: a session's machine (and its runs/) does not outlive
the session, the repository does.

    python results/archive_runs.py save RUNS STATE [WHOLE...]
    python results/archive_runs.py restore STATE RUNS

``save`` copies into STATE every finished run of the plan in RUNS (a ``<run>.done.json`` beside it,
at any depth): the record, and the run's small text files (json, jsonl, csv, md), which are what a
dependent run (a training's ``arch.json``) and the plan's results read, with the plan's own files at
the top of RUNS (and its figure). Checkpoints are not kept: an unfinished run starts again. Each
WHOLE directory (under RUNS), once it holds a finished training (``metrics.json``), is kept with its
``model.keras`` too: a trained network that later runs start from, so they start from the same
weights in every session (its SHA-256 is in their records). ``restore`` copies STATE back,
never over an existing file. Every file is copied whole or not at all (a temporary file renamed into
place), and a run's ``.done.json`` after its files, both ways: a copy cut short by a crash never
leaves a run marked finished without its files, nor a truncated file that ``restore`` would keep.
Numpy-free, TF-free.
"""

import os
import shutil
import sys

TEXT = (".json", ".jsonl", ".csv", ".md")
TOP = TEXT + (".png",)  # the plan's own files (a study's figure too)
DONE = ".done.json"
PART = ".part"  # a copy under way (left only by a crash mid-copy; never restored)


def _fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _target(root, relative):
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def _copy(src, dst):
    shutil.copy2(src, dst + PART)
    os.replace(dst + PART, dst)


def _copy_tree(src, dst, keep):
    for root, _, files in os.walk(src):
        for name in files:
            if keep(name):
                _copy(os.path.join(root, name), _target(dst, os.path.relpath(os.path.join(root, name), src)))


def save(runs, state, whole=()):
    if not os.path.isdir(runs):
        print(f"saved nothing: no {runs} yet")
        return
    count = 0
    os.makedirs(state, exist_ok=True)
    for root, _, files in os.walk(runs):  # a study nests its runs (runs/<structure>/<run>)
        for name in sorted(files):
            if name.endswith(DONE):
                run = os.path.relpath(os.path.join(root, name[: -len(DONE)]), runs)
                _copy_tree(os.path.join(runs, run), os.path.join(state, run), lambda f: f.endswith(TEXT))
                _copy(os.path.join(root, name), _target(state, run + DONE))
                count += 1
    # After the runs: the planner appends a run's record to records.jsonl before it writes its .done.json,
    # so every run saved above has its record in the copy taken now.
    for name in sorted(os.listdir(runs)):
        if os.path.isfile(os.path.join(runs, name)) and name.endswith(TOP):
            _copy(os.path.join(runs, name), os.path.join(state, name))
    kept = [d for d in whole if os.path.isfile(os.path.join(runs, d, "metrics.json"))]  # finished ones only
    for directory in kept:
        _copy_tree(os.path.join(runs, directory), os.path.join(state, directory),
                   lambda f: f.endswith(TEXT) or f == "model.keras")
    print(f"saved {count} finished runs of {runs} and {len(kept)} of {len(whole)} whole directories to {state}")


def restore(state, runs):
    if not os.path.isdir(state):
        _fail(f"no saved state to restore. Received: {state!r}. Allowed: a directory that archive_runs.py "
              "save wrote.")
    files = sorted((os.path.relpath(os.path.join(root, name), state) for root, _, names in os.walk(state)
                    for name in names if not name.endswith(PART)),
                   key=lambda f: f.endswith(DONE))  # the .done.json records last
    count = 0
    for relative in files:
        if not os.path.exists(os.path.join(runs, relative)):
            _copy(os.path.join(state, relative), _target(runs, relative))
            count += 1
    print(f"restored {count} files from {state} to {runs}")


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] not in ("save", "restore"):
        _fail(f"usage: archive_runs.py save RUNS STATE [WHOLE...] | restore STATE RUNS. Received: {sys.argv[1:]!r}.")
    save(sys.argv[2], sys.argv[3], sys.argv[4:]) if sys.argv[1] == "save" else restore(sys.argv[2], sys.argv[3])
