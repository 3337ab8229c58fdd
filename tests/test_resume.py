"""Exact resume after a crash: SIGKILL a search / a training mid-epoch, re-run the same command,
and get what an uninterrupted run with the same seed gets (arch.json and alpha; metrics.json).

Each test runs the uninterrupted reference and the interrupted run side by side (two
subprocesses, the machine has two cores); the kill comes after the first checkpoint is on disk
and before the second, so it lands inside epoch 2.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 300


def _env():
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    return env


def _start(args):
    return subprocess.Popen([sys.executable, *args], cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc):
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    return out


def _checkpoints(directory):
    state = tf.train.get_checkpoint_state(directory) if os.path.isdir(directory) else None
    return list(state.all_model_checkpoint_paths) if state else []


def _kill_inside_second_epoch(proc, ckpt_dir, done_file):
    """SIGKILLs ``proc`` once its first checkpoint exists (and before its second, or the end)."""
    deadline = time.time() + TIMEOUT
    while not _checkpoints(ckpt_dir):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.time() < deadline, "no checkpoint was written"
        time.sleep(0.02)
    time.sleep(0.3)  # into epoch 2: past its first batches
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert len(_checkpoints(ckpt_dir)) == 1, "the kill came after the second checkpoint: lengthen the epochs"
    assert not os.path.exists(done_file)


def _alpha(ckpt_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(ckpt_dir))
    key = "net/alpha/.ATTRIBUTES/VARIABLE_VALUE"
    assert key in reader.get_variable_to_shape_map(), sorted(reader.get_variable_to_shape_map())[:20]
    return reader.get_tensor(key)


def test_search_killed_mid_epoch_resumes_to_the_uninterrupted_result(tmp_path):
    args = [os.path.join("tools", "search.py"), "--flagfile=flags/quickstart.flags", "--model=resnet8",
            "--synthetic_train_size=512", "--search_warmup_epochs=1", "--search_epochs=3",
            "--search_steps_per_epoch=12", "--search_batch_size=32", "--threshold=0.13", "--arch_lr=0.05",
            "--verbose=0"]
    ref_dir, run_dir = str(tmp_path / "reference"), str(tmp_path / "killed")
    reference = _start([*args, f"--workdir={ref_dir}"])
    killed = _start([*args, f"--workdir={run_dir}"])
    ckpt_dir = os.path.join(run_dir, "search", "checkpoints")
    _kill_inside_second_epoch(killed, ckpt_dir, os.path.join(run_dir, "arch.json"))
    resumed = _start([*args, f"--workdir={run_dir}"])
    out = _finish(resumed)
    _finish(reference)
    assert "resuming the search at epoch 2" in out, out

    with open(os.path.join(ref_dir, "arch.json"), encoding="utf-8") as f:
        want = json.load(f)
    with open(os.path.join(run_dir, "arch.json"), encoding="utf-8") as f:
        got = json.load(f)
    assert got == want  # widths, probabilities, candidate counts, mean widths: everything
    assert max(got["num_candidates"]) > 8  # expansions happened, before and after the kill
    np.testing.assert_array_equal(_alpha(ckpt_dir), _alpha(os.path.join(ref_dir, "search", "checkpoints")))
    logs = []
    for d in (ref_dir, run_dir):
        with open(os.path.join(d, "search_log.jsonl"), encoding="utf-8") as f:
            logs.append([{k: v for k, v in json.loads(line).items() if k != "elapsed_seconds"} for line in f])
    assert logs[0] == logs[1] and len(logs[0]) == 4


def test_training_killed_mid_epoch_resumes_to_the_uninterrupted_metrics(tmp_path):
    args = [os.path.join("tools", "train.py"), "--model=resnet8", "--w_bits=2", "--a_bits=2",
            "--synthetic_train_size=768", "--synthetic_test_size=128", "--epochs=3", "--warmup_epochs=1",
            "--batch_size=32", "--verbose=0"]
    ref_dir, run_dir = str(tmp_path / "reference"), str(tmp_path / "killed")
    reference = _start([*args, f"--workdir={ref_dir}"])
    killed = _start([*args, f"--workdir={run_dir}"])
    _kill_inside_second_epoch(killed, os.path.join(run_dir, "backup"), os.path.join(run_dir, "metrics.json"))
    out = _finish(_start([*args, f"--workdir={run_dir}"]))
    _finish(reference)
    assert "resuming at epoch 2" in out, out

    metrics = []
    for d in (ref_dir, run_dir):
        with open(os.path.join(d, "metrics.json"), encoding="utf-8") as f:
            metrics.append({k: v for k, v in json.load(f).items() if k != "train_seconds"})
    assert metrics[0] == metrics[1]
    with open(os.path.join(run_dir, "history.csv"), encoding="utf-8") as f:
        assert len(f.read().splitlines()) == 1 + 3  # header + one row per epoch, none twice
    # Re-running a finished run reports it and changes nothing.
    before = os.stat(os.path.join(run_dir, "metrics.json")).st_mtime_ns
    out = _finish(_start([*args, f"--workdir={run_dir}"]))
    assert "finished already" in out
    assert os.stat(os.path.join(run_dir, "metrics.json")).st_mtime_ns == before
