"""A TFDS dataset found by name and prepared on first use, as TFDS users expect.

``tfds.load("cifar10")`` downloads and prepares CIFAR-10 the first time it is asked for;
nce-tf does the same: :func:`open_builder` finds the builder (nothing is read or written
yet, so the dataset's features can be checked against the model first) and
:func:`prepare` runs ``builder.download_and_prepare()`` into the TFDS data directory when
the dataset is not there yet, with TFDS's own progress bars. What TFDS cannot do is
reported as one line naming the dataset and the directory (:class:`UsageError`):

- ``download=False`` (``--nodownload``, for offline machines): an unprepared dataset is
  refused with the ``tfds build`` command that prepares it;
- a dataset that needs a manual download (``imagenet2012``: TFDS may not fetch it) says
  which files to put where; once they are there, the next run prepares it;
- a failed download (no network, a server error) names the dataset, the directory and
  TFDS's reason.

``tensorflow_datasets`` is imported inside the functions because importing it costs
seconds, which the in-memory sources should not pay.

Example::

    builder = open_builder("cifar10", data_dir=None)   # TFDS's default directory
    prepare(builder, data_dir=None, download=True)     # downloads once, then reuses
"""

import contextlib
import difflib
import os
from typing import Optional

from absl import logging

from nce_tf.errors import UsageError

MANUAL_FILES = {"imagenet2012": "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar (from image-net.org)"}
_REASON_CHARS = 200


@contextlib.contextmanager
def absl_quiet(quiet=True):
    """Lowers absl logging to errors: on an unprepared data dir TFDS logs INFO and WARNING
    lines (no dataset_info.json, constructing the dataset) before we report one line."""
    verbosity = logging.get_verbosity()
    if quiet:
        logging.set_verbosity(logging.ERROR)
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)


def _clause(error: BaseException) -> str:
    """An exception as a short clause: TFDS messages span lines and list whole catalogs."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= _REASON_CHARS else text[:_REASON_CHARS] + "..."


def open_builder(name: str, data_dir: Optional[str], shown: Optional[str] = None):
    """``tfds.builder(name)`` with one-line errors; reads and writes nothing.

    Args:
        name: A TFDS name, optionally with config and version (``cifar10:3.0.2``).
        data_dir: TFDS data directory; None means TFDS's default.
        shown: The value as the user wrote it (``tfds:cifar100``), for messages.

    Returns:
        The ``tfds.core.DatasetBuilder``.

    Raises:
        UsageError: If TFDS knows no such dataset or cannot build that version.
    """
    # TFDS (slow to import) only when a TFDS dataset is read
    import tensorflow_datasets as tfds

    shown = shown or name
    try:
        with absl_quiet():
            return tfds.builder(name, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError:
        base = name.split(":")[0].split("/")[0]
        # The community registry lives on GCS: offline it costs a timeout and a C++ warning on stderr.
        close = difflib.get_close_matches(base, tfds.list_builders(with_community_datasets=False), n=3)
        hint = f" Did you mean {', '.join(f'tfds:{c}' for c in close)}?" if close else ""
        raise UsageError(
            f"Unknown TFDS dataset. Received: dataset={shown!r}. Allowed: tfds:NAME or "
            f"tfds:NAME:VERSION with NAME from the TFDS catalog "
            f"(https://www.tensorflow.org/datasets/catalog).{hint}"
        ) from None
    except (AssertionError, ValueError) as e:  # a version or config this TFDS cannot build
        raise UsageError(f"TFDS cannot open this dataset ({_clause(e)}). Received: dataset={shown!r}.") from None


def _manual_dir(builder) -> str:
    # Where download_and_prepare looks when no DownloadConfig names another directory.
    return os.path.join(os.fspath(builder.data_dir_root), "downloads", "manual")


def _manual_files_missing(builder) -> bool:
    if not builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
        return False
    manual = _manual_dir(builder)
    return not os.path.isdir(manual) or not os.listdir(manual)


def _manual_error(builder, shown: str) -> UsageError:
    files = MANUAL_FILES.get(builder.name, "the files its TFDS catalog page lists")
    return UsageError(
        f"TFDS dataset {builder.name!r} needs a manual download, which TFDS cannot do. Received: "
        f"dataset={shown!r}. Put {files} in {_manual_dir(builder)}, then run again: nce-tf prepares "
        f"it there on first use."
    )


def _new_dirs(builder):
    """The outermost directories a download_and_prepare would create, of those that do not exist yet."""
    root = os.fspath(builder.data_dir_root)
    if not os.path.exists(root):
        top = root
        while not os.path.exists(os.path.dirname(top)):  # TFDS makes the parents too
            top = os.path.dirname(top)
        return [top]
    dirs = [os.path.join(root, "downloads")]
    data_path = os.fspath(builder.data_path)
    while data_path.startswith(root + os.sep):  # the dataset's version / config / name levels
        dirs.append(data_path)
        data_path = os.path.dirname(data_path)
    missing = [d for d in dirs if not os.path.exists(d)]
    return [d for d in missing if not any(d.startswith(m + os.sep) for m in missing)]


def _remove_empty(trees):
    # Only directories left empty, deepest first: a failed first use leaves the data dir as it was,
    # and whatever a concurrent run put there stays.
    for tree in trees:
        for d, _, _ in sorted(os.walk(tree), key=lambda entry: len(entry[0]), reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(d)


def prepare(builder, data_dir: Optional[str], download: bool = True, shown: Optional[str] = None) -> None:
    """Makes sure ``builder``'s dataset is on disk: downloads and prepares it if it is not.

    Args:
        builder: From :func:`open_builder`.
        data_dir: The TFDS data directory the user gave (None: TFDS's default), for messages.
        download: If False, an unprepared dataset is an error instead of a download.
        shown: The dataset as the user wrote it, for messages.

    Raises:
        UsageError: If the dataset is not prepared and cannot be (``download=False``, a
            manual download missing, a failed download).
    """
    shown = shown or builder.name
    with absl_quiet():
        if builder.is_prepared():
            return
    root = os.fspath(builder.data_dir_root)
    if not download:
        manual = f" (after a manual download into {_manual_dir(builder)})" if builder.MANUAL_DOWNLOAD_INSTRUCTIONS else ""
        raise UsageError(
            f"TFDS dataset {builder.name!r} is not prepared in the data dir and downloads are off (--nodownload). "
            f"Received: dataset={shown!r}, tfds_data_dir={data_dir!r} (looked in {os.fspath(builder.data_dir)!r}). "
            f"Prepare it there first with `tfds build {builder.name} --data_dir={root}`{manual}, "
            f"or run without --nodownload."
        )
    print(f"nce-tf: preparing TFDS dataset {builder.info.full_name} in {root} (first use; "
          f"--nodownload refuses instead)", flush=True)
    created = _new_dirs(builder)
    try:
        builder.download_and_prepare()
    except Exception as e:  # noqa: BLE001  whatever the network or a server did: one line, no traceback
        _remove_empty(created)
        if _manual_files_missing(builder):
            raise _manual_error(builder, shown) from None
        if isinstance(e, ImportError) and e.name:
            # TFDS 4.9.10 imports importlib_resources to download without declaring it
            # (tensorflow/datasets#11212); nce-tf's setup.py installs it.
            raise UsageError(
                f"TFDS cannot download {builder.name!r} into {root!r}: it needs the Python module "
                f"{e.name!r}, which is not installed. Received: dataset={shown!r}. Install it "
                f"(`pip install {e.name}`) and run again."
            ) from None
        raise UsageError(
            f"Could not download and prepare TFDS dataset {builder.name!r} into {root!r} ({_clause(e)}). "
            f"Received: dataset={shown!r}. Check the network, or prepare it on another machine with "
            f"`tfds build {builder.name} --data_dir=DIR` and copy DIR to --tfds_data_dir."
        ) from None
