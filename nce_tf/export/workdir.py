"""Where an export reads and writes, checked without TensorFlow (so ``tools/export.py``
reports a work directory without a model, or a file where the export directory goes, in
well under a second)."""

import os

from nce_tf.errors import UsageError


def find_trained_model(workdir):
    """``DIR/train/model.keras`` (after ``tools/nce.py``) or ``DIR/model.keras`` (``tools/train.py``)."""
    for sub in ("train", ""):
        path = os.path.join(workdir, sub, "model.keras")
        if os.path.isfile(path):
            return path, os.path.join(workdir, sub)
    raise UsageError(f"No trained model in the work directory (expected model.keras or train/model.keras). "
                     f"Received: workdir={workdir!r}")


def check_export_dir(out_dir):
    """A one-line error when a file stands where the export directory goes."""
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UsageError(f"Export directory is not writable (a file is in the way). Received: {out_dir!r}")
    return out_dir
