"""Compress a trained Keras CNN to a budget: ``nce-tf compress`` and :func:`compress`.

From a trained network (a ``.keras`` file or a finished run) and a budget (ceilings on MACs, PARAMs,
weight memory or BOPs, at any bits), the compressed network: its widths chosen by a search from the
trained weights (``method="nce"``) or by L1-norm pruning (``l1_uniform``: one keep ratio for every
layer; ``l1_global``: one threshold over normalised filter norms), its weights inherited (the
largest-L1 filters) with BN statistics re-estimated, or trained from scratch at the same widths
(``scratch``); then a short fine-tuning distilled from the original, an export, and a report of
accuracy before and after, costs, widths and time per phase (:mod:`nce_tf.compression.pipeline`).

Modules: :mod:`~nce_tf.compression.config` (the settings, TF-free), :mod:`~nce_tf.compression.budget`,
:mod:`~nce_tf.compression.l1`, :mod:`~nce_tf.compression.inherit`, :mod:`~nce_tf.compression.pipeline`,
:mod:`~nce_tf.compression.report`.

Example::

    import nce_tf
    small = nce_tf.compress(model, (x_train, y_train), (x_val, y_val), budget={"flops_ratio": 0.5},
                            w_bits=8, a_bits=8, workdir="runs/compressed")
"""

import dataclasses
import os
import tempfile

import numpy as np

from nce_tf.compression.config import TOOL_DEFAULTS, CompressConfig, check_budget_settings
from nce_tf.errors import UsageError
from nce_tf.search.config import SearchConfig
from nce_tf.train.config import TrainConfig

BUDGET_FIELDS = ("flops_ratio", "params_ratio", "memory_bytes", "memory_ratio", "bops", "bops_ratio")


def compress(model, train, validation=None, *, budget, w_bits=32, a_bits=32, method="nce", workdir=None,
             verbose=True, **settings):
    """Compresses a trained Keras model to ``budget``; returns the compressed ``keras.Model``.

    Args:
        model: the trained ``keras.Model`` (functional or Sequential, logits out: at the default
            ``kd_weight=0.5`` it is its own teacher, and a softmax output is refused), or the path of a
            ``.keras`` file or of a finished run's work directory.
        train: ``(x_train, y_train)``: uint8 images ``(N, H, W, 3)`` and integer labels, normalised by the
            pipeline as nce-tf trains (CIFAR statistics for 32 x 32 images, ImageNet's otherwise: see
            :mod:`nce_tf.data.npz`); or a dataset name as ``--dataset`` takes it (``"synthetic"``,
            ``"cifar10"``, ``"npz:PATH"``), with ``validation=None`` (its test split).
        validation: ``(x_val, y_val)``, the images accuracy is measured on (before and after).
        budget: ``{field: value}`` with fields of :data:`BUDGET_FIELDS` (``{"flops_ratio": 0.5}``,
            ``{"memory_bytes": "64Ki"}``): ceilings below the original's cost.
        w_bits, a_bits: bits of the compressed network (32, 8, 4, 2).
        method: ``nce``, ``l1_uniform``, ``l1_global`` or ``scratch``.
        workdir: the work directory (default: a new temporary directory); it receives ``report.md``,
            ``compress.json``, ``model.keras``, (``export=True``) ``export/``, and the inputs given in
            memory (``data.npz``, ``original.keras``; a model saved again has another SHA-256, so a
            second call on the same directory needs ``overwrite=True``).
        verbose: print progress lines.
        **settings: any other field of :class:`~nce_tf.train.TrainConfig`,
            :class:`~nce_tf.search.SearchConfig` or :class:`~nce_tf.compression.config.CompressConfig`
            (``epochs``, ``kd_weight``, ``search_epochs``, ``export``, ...); defaults as the tool's
            (:data:`~nce_tf.compression.config.TOOL_DEFAULTS`).

    Raises:
        UsageError: a budget at or above the original's cost or out of reach, a model that does not
            adapt, an unknown setting (one line; nothing written).
    """
    # TensorFlow, loaded when called: nce_tf.compression (and its config, which the tools' flags read)
    # stays importable without it.
    from nce_tf.compression.pipeline import SETTINGS_FILE, run_compress

    values, fields = _settings(budget, settings, w_bits=w_bits, a_bits=a_bits, method=method)
    workdir = os.path.abspath(workdir or tempfile.mkdtemp(prefix="nce_tf_compress_"))
    created = not os.path.exists(workdir)
    values["workdir"] = workdir
    written = _save_inputs(model, train, validation, workdir, values)
    configs = [cls(**{k: v for k, v in values.items() if k in fields[cls]})
               for cls in (TrainConfig, SearchConfig, CompressConfig)]
    try:
        compressed, _ = run_compress(*configs, verbose=verbose)
    except UsageError:
        if not os.path.exists(os.path.join(workdir, SETTINGS_FILE)):  # refused before it started
            for path in written:
                os.remove(path)
            if created and not os.listdir(workdir):
                os.rmdir(workdir)
        raise
    return compressed


def _settings(budget, settings, **given):
    """Every setting of the run (the tool's defaults, ``settings``, ``budget``, ``given``) and each config
    class's field names; one-line errors for an unknown budget field or setting and a bad budget."""
    unknown = sorted(set(budget) - set(BUDGET_FIELDS))
    if unknown:
        raise UsageError(f"Unknown budget field. Received: {unknown}. Allowed: {', '.join(BUDGET_FIELDS)}.")
    fields = {cls: {f.name for f in dataclasses.fields(cls)} for cls in (TrainConfig, SearchConfig, CompressConfig)}
    unknown = sorted(set(settings) - set().union(*fields.values()))
    if unknown:
        raise UsageError(f"Unknown setting. Received: {unknown}. Allowed: fields of TrainConfig, SearchConfig or "
                         "CompressConfig.")
    values = {**TOOL_DEFAULTS, **settings, **budget, **given}
    check_budget_settings(SearchConfig(**{k: v for k, v in values.items() if k in fields[SearchConfig]}))
    return values, fields


def _save_inputs(model, train, validation, workdir, values):
    """Sets ``values``'s ``dataset`` and ``trained``; the inputs given in memory are saved into ``workdir``
    (``data.npz``, ``original.keras``). Returns the paths written (removed again if the run refuses them).

    A file already there with the same arrays (the same model's weights) is kept, not rewritten: its
    SHA-256 is in the run's settings, so the same call continues a killed run or returns a finished
    one. Other inputs in a workdir that holds some are refused in one line before anything is written
    (``overwrite=True`` replaces them)."""
    if isinstance(train, str) and validation is not None:
        raise UsageError("A dataset name brings its own test split. Received: validation=... with train="
                         f"{train!r}. Allowed: validation=None.")
    data_path, model_path = os.path.join(workdir, "data.npz"), os.path.join(workdir, "original.keras")
    arrays = None
    if not isinstance(train, str):
        (x, y), (xv, yv) = train, validation
        arrays = {"x_train": np.asarray(x), "y_train": np.asarray(y),
                  "x_test": np.asarray(xv), "y_test": np.asarray(yv)}
    in_memory_model = None if isinstance(model, str) else model
    todo = []  # the inputs to write, each checked first
    for path, given, same in ((data_path, arrays, _same_arrays), (model_path, in_memory_model, _same_model)):
        if given is None:
            continue
        if os.path.exists(path) and same(path, given):
            continue
        if os.path.exists(path) and not values.get("overwrite"):
            raise UsageError(f"The work directory holds another compression's {os.path.basename(path)}. Received: "
                             f"workdir={workdir!r}. Allowed: the same model and data (to continue or read that "
                             "run), overwrite=True, or another workdir.")
        todo.append((path, given))
    written = []
    for path, given in todo:
        os.makedirs(workdir, exist_ok=True)
        if path == data_path:
            np.savez(path, **given)
        else:
            given.save(path)
        written.append(path)
    values["dataset"] = train if arrays is None else f"npz:{data_path}"
    values["trained"] = model if in_memory_model is None else model_path
    return written


def _same_arrays(path, arrays):
    try:
        with np.load(path, allow_pickle=False) as saved:
            return set(saved.files) == set(arrays) and all(np.array_equal(saved[k], v) for k, v in arrays.items())
    except (OSError, ValueError):
        return False


def _same_model(path, model):
    """Whether the ``.keras`` file at ``path`` holds ``model``: its layers (names and classes) and weights."""
    from nce_tf.sources.user import load_keras_file  # TensorFlow: only when a model is compared

    try:
        saved = load_keras_file(path, f"workdir file {path!r}")
    except UsageError:
        return False
    mine, theirs = model.weights, saved.weights
    def layers(m):
        return [(type(layer).__name__, layer.name) for layer in m.layers]

    return (layers(model) == layers(saved)
            and len(mine) == len(theirs)
            and all(tuple(a.shape) == tuple(b.shape) and np.array_equal(np.asarray(a), np.asarray(b))
                    for a, b in zip(mine, theirs)))


__all__ = ["BUDGET_FIELDS", "compress"]
