"""Run state on disk: what training and search checkpoint, and how a re-run resumes or refuses.

A run's state is one ``tf.train.Checkpoint`` (model or super-net, its optimizers, the epoch
and the step inside it) kept by a ``tf.train.CheckpointManager``.  Every model variable is in
it, random generator states included (the search's Gumbel ``SeedGenerator``), and the data
order of an epoch is a function of ``(seed, epoch)`` (:func:`nce_tf.data.epoch_stream`), so a
run restored at a checkpoint continues exactly as an uninterrupted one would.

A checkpoint is written only from a finite state: a diverged run keeps its last good one.

The settings a run was started with are saved in its work directory (``config.json`` /
``search_config.json``, written atomically); a re-run with other settings is refused unless
``--overwrite`` is given, which deletes the previous run's files (only those nce-tf writes).
"""

import json
import os
import shutil

import numpy as np

from nce_tf.errors import UsageError


def check_settings(path, settings, overwrite, what="run"):
    """``True`` if ``path`` holds these ``settings`` (resume), ``False`` if absent or overwriting.

    Raises a one-line :class:`UsageError` when it holds other settings and ``overwrite`` is off.
    """
    if not os.path.exists(path):
        return False
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, ValueError):
        saved = None
    current = json.loads(json.dumps(settings, default=str))
    if saved == current:
        return True
    if overwrite:
        return False
    if not isinstance(saved, dict):
        raise UsageError(f"The work directory's {os.path.basename(path)} is not valid JSON. "
                         f"Received: {path!r}. Pass --overwrite to start afresh, or use a new work directory.")
    # Settings both runs name come first: they say what changed; keys only one names follow.
    changed = sorted((k not in saved or k not in current, k) for k in set(saved) | set(current)
                     if saved.get(k) != current.get(k))
    changed = [k for _, k in changed]
    detail = ", ".join(f"{k}={saved.get(k)!r} -> {current.get(k)!r}" for k in changed[:3])
    raise UsageError(f"The work directory holds a {what} with other settings ({detail}"
                     f"{', ...' if len(changed) > 3 else ''}). Received: workdir={os.path.dirname(path)!r}. "
                     "Pass --overwrite to replace it, or use a new work directory.")


def remove_outputs(workdir, names):
    """Deletes the listed files / directories of a previous run (``--overwrite``)."""
    for name in names:
        path = os.path.join(workdir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)


def all_finite(variables):
    return all(np.isfinite(np.asarray(v.numpy(), dtype=np.float64)).all()
               for v in variables if np.issubdtype(np.dtype(v.dtype), np.floating))


class RunState:
    """A ``tf.train.Checkpoint`` of ``objects`` plus the ``epoch`` and ``step`` reached.

    Args:
        directory: where the ``CheckpointManager`` keeps its files.
        max_to_keep: checkpoints kept (the newest ones).
        **objects: trackables to save (models, optimizers).
    """

    def __init__(self, directory, max_to_keep=2, **objects):
        # TensorFlow on first use: the settings check runs without it
        import tensorflow as tf

        self.directory = directory
        self.epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.step_var = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.checkpoint = tf.train.Checkpoint(epoch=self.epoch_var, step=self.step_var, **objects)
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=max_to_keep)

    @property
    def latest(self):
        return self.manager.latest_checkpoint

    def restore(self):
        """Restores the newest checkpoint, if any; returns ``(epoch, step)`` (``(0, 0)`` if none).

        A checkpoint that does not load (truncated, corrupt, from another model) is a one-line
        :class:`UsageError`: nothing is overwritten, the user decides (``--overwrite``).
        """
        # TensorFlow on first use: the settings check runs without it
        import tensorflow as tf

        path = self.latest
        if not path:
            return 0, 0
        try:
            self.checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
        except (tf.errors.OpError, ValueError, AssertionError, KeyError, TypeError) as e:
            reason = " ".join(str(e).split())[:160]
            raise UsageError(f"The checkpoint does not load ({type(e).__name__}: {reason}). Received: {path!r}. "
                             "Pass --overwrite to start afresh.") from None
        return int(self.epoch_var.numpy()), int(self.step_var.numpy())

    def save(self, epoch, step=0):
        """Saves the state reached after ``step`` batches of epoch ``epoch`` (0-based; step 0 = its start)."""
        self.epoch_var.assign(epoch)
        self.step_var.assign(step)
        return self.manager.save()
