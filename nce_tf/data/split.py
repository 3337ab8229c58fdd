"""Reproducible per-class selection of example indices.

Two jobs need "pick some examples of every class, reproducibly":

* :func:`split_per_class` cuts a training set into two disjoint halves for bi-level
  architecture search: one half trains the weights, the other the architecture
  parameters. Splitting per class keeps both halves class-balanced, as in TAS
  (per class, 50/50, seed 111).
* :func:`select_per_class` draws a fixed number of examples per class, e.g. the NCE
  paper's ImageNet search subset (50 training images per class).

Both work on a plain 1-D label array and return sorted numpy index arrays, so the same
selection can be applied to numpy arrays (``x[idx]``) or used to filter a dataset.

Example::

    idx_w, idx_a = split_per_class(y_train, fraction=0.5, seed=111)
    x_w, y_w = x_train[idx_w], y_train[idx_w]
"""

import numpy as np

from nce_tf.errors import UsageError


def _check_labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise UsageError(
            "labels must be a 1-D integer array. "
            f"Received: labels with shape={labels.shape}, dtype={labels.dtype}."
        )
    return labels


def _indices_by_class(labels: np.ndarray):
    """Yields ``(class, indices of that class in ascending order)`` for each class."""
    # One stable sort instead of a mask per class: ImageNet has 1.28M labels and 1000
    # classes, where 1000 full-array comparisons would dominate.
    order = np.argsort(labels, kind="stable")
    classes, starts = np.unique(labels[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    for c, start, end in zip(classes, starts, ends):
        yield c, order[start:end]


def split_per_class(labels, fraction: float = 0.5, seed: int = 111):
    """Splits example indices per class into two disjoint, class-balanced parts.

    For each class with ``n_c`` examples, ``floor(n_c * fraction)`` randomly chosen
    examples go to part ``a`` and the remaining ``n_c - floor(n_c * fraction)`` to part
    ``b``. Rounding down means that with ``fraction=0.5`` an odd class gives its extra
    example to ``b``, and a class with a single example lands entirely in ``b``.

    Args:
        labels: 1-D integer array of labels, one per example.
        fraction: Share of every class that goes to part ``a``, strictly between 0
            and 1.
        seed: Seed for ``numpy.random.default_rng``; same labels and seed, same split.

    Returns:
        ``(idx_a, idx_b)``: sorted int64 index arrays, disjoint, together covering
        ``range(len(labels))``.

    Raises:
        UsageError: If labels are not 1-D integers or fraction is not in (0, 1).
    """
    labels = _check_labels(labels)
    if not 0.0 < float(fraction) < 1.0:
        raise UsageError(
            f"fraction must be strictly between 0 and 1. Received: fraction={fraction}."
        )
    rng = np.random.default_rng(seed)
    part_a, part_b = [], []
    for _, idx in _indices_by_class(labels):
        shuffled = rng.permutation(idx)
        n_a = int(np.floor(len(idx) * fraction))
        part_a.append(shuffled[:n_a])
        part_b.append(shuffled[n_a:])
    if not part_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    idx_a = np.sort(np.concatenate(part_a)).astype(np.int64)
    idx_b = np.sort(np.concatenate(part_b)).astype(np.int64)
    return idx_a, idx_b


def select_per_class(labels, per_class: int, seed: int = 0) -> np.ndarray:
    """Chooses ``per_class`` random examples of every class.

    A class with fewer than ``per_class`` examples contributes all of them (never the
    case for ImageNet, whose smallest class has 732 training images).

    Args:
        labels: 1-D integer array of labels, one per example.
        per_class: Number of examples to keep per class, at least 1.
        seed: Seed for ``numpy.random.default_rng``; same labels and seed, same choice.

    Returns:
        Sorted int64 array of the chosen indices.

    Raises:
        UsageError: If labels are not 1-D integers or per_class < 1.
    """
    labels = _check_labels(labels)
    if int(per_class) < 1:
        raise UsageError(f"per_class must be at least 1. Received: per_class={per_class}.")
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(idx, size=min(int(per_class), len(idx)), replace=False)
        for _, idx in _indices_by_class(labels)
    ]
    if not chosen:
        return np.zeros(0, np.int64)
    return np.sort(np.concatenate(chosen)).astype(np.int64)
