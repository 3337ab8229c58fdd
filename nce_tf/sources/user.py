"""A user's own Keras model as a zoo entry: ``--model=keras:PATH.keras`` in every tool.

The model file is loaded with ``keras.saving.load_model(path, safe_mode=True, compile=False)``
(it never runs code from the file; a layer that is neither Keras' nor nce-tf's is refused) and read
by :func:`nce_tf.adapt`'s graph reader.  Its width list has one entry per row of the adapted
search space (every Conv2D and hidden Dense, in graph order; the first conv and the classifier
pinned), so the tools treat it as they treat ``resnet20``:

- ``tools/train.py --model=keras:m.keras`` trains the model at its own widths with the
  quantization flags (QAT layers in place of its convs and dense layers, PACT at its ReLUs);
- ``tools/search.py`` / ``tools/nce.py`` search its widths; ``arch.json`` records the model as
  ``keras:PATH`` (the path as given) and ``train.py --arch`` rebuilds the derived network;
- ``tools/count.py --model=keras:m.keras`` counts it.

The file's SHA-256 is part of a run's recorded settings: a re-run after the file changed is
refused (unless ``--overwrite``) instead of resuming a state that belongs to another model.

Example:

>>> import keras, os, tempfile
>>> from nce_tf import sources
>>> i = keras.Input((16, 16, 3))
>>> x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(i)
>>> x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
>>> path = os.path.join(tempfile.mkdtemp(), "mine.keras")
>>> keras.Model(i, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x))).save(path)
>>> sources.default_widths("keras:" + path)
[8, 16]
"""

import functools
import hashlib
import os
import re
import zipfile

from nce_tf.errors import UsageError

PREFIX = "keras:"


def is_user_model(name):
    return isinstance(name, str) and name.startswith(PREFIX)


def keras_name(name):
    """A name Keras accepts for a model built from ``name`` (no ``/``): a user model's file stem."""
    if not is_user_model(name):
        return name
    stem = os.path.splitext(os.path.basename(name[len(PREFIX):]))[0]
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in stem) or "user_model"


def check_path(name):
    """The file of ``keras:PATH``, checked without TensorFlow: it exists and is a ``.keras`` archive."""
    path = name[len(PREFIX):]
    if not path.endswith(".keras"):
        raise UsageError(f"A user model is a .keras file. Received: model={name!r}. Expected: keras:PATH.keras.")
    if not os.path.isfile(path):
        raise UsageError(f"Model file not found. Received: model={name!r}.")
    if not zipfile.is_zipfile(path):
        raise UsageError(f"Model file is not a .keras archive (a zip written by model.save). Received: model={name!r}.")
    return path


def fingerprint(name):
    """SHA-256 of the model file (part of a run's settings)."""
    return file_sha256(check_path(name))


def file_sha256(path):
    """SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_failure(error):
    """Keras' reason for refusing a file, in a clause (its messages run to many lines of config)."""
    text = " ".join(str(error).split())
    unknown = re.search(r"Could not locate (class|function) '([^']+)'", text)
    if unknown:
        return f"unknown {unknown.group(1)} {unknown.group(2)!r}: the tools know Keras' and nce-tf's layers only"
    if "arbitrary code" in text or ("Lambda" in text and "safe" in text.lower()):
        return "it holds Python code (a Lambda layer), which safe mode never runs"
    return (text[:160] + "...") if len(text) > 160 else (text or type(error).__name__)


def load_keras_file(path, received):
    """``keras.saving.load_model(path, safe_mode=True, compile=False)`` with nce-tf's layers registered;
    a file Keras refuses is a one-line :class:`UsageError` ending in ``Received: {received}.``"""
    # the adapter and Keras load TensorFlow: nce_tf.sources stays TF-free for the tools' flag checks
    import keras

    import nce_tf.layers  # noqa: F401  nce-tf's own layers load by their registered names

    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as e:  # noqa: BLE001  any failure to load is the file's: one line, no traceback
        raise UsageError(f"Cannot load the model file ({_load_failure(e)}). Received: {received}.") from None


class UserModelSpec:
    """The zoo's :class:`~nce_tf.models.zoo.ModelSpec` interface for a ``keras:PATH`` model
    (resolved by :func:`nce_tf.sources.get_spec`).

    Nothing is loaded until a width list, a shape or a build is asked for, so validating
    flags stays free of TensorFlow.
    """

    kind = "user"

    def __init__(self, name):
        self.name = name
        self.path = check_path(name)

    @functools.cached_property
    def model(self):
        return load_keras_file(self.path, f"model={self.name!r}")

    def _build_space(self, lane=1):
        # the adapter and Keras load TensorFlow: nce_tf.sources stays TF-free for the tools' flag checks
        from nce_tf.adapter.graph import read_graph
        from nce_tf.adapter.space import build_adapted_space

        refs = read_graph(self.model)
        return build_adapted_space(refs, num_classes=int(refs[-1].shape[-1]), input_shape=refs[0].shape,
                                   name=self.name, lane=lane, keras_name=keras_name(self.name))

    @functools.cached_property
    def _space(self):
        return self._build_space()

    @property
    def input_shape(self):
        return tuple(self._space.input_shape)

    @property
    def num_classes(self):
        return int(self._space.num_classes)

    def default_widths(self):
        return self._space.default_widths()

    def width_names(self):
        return [r.name for r in self._space.rows]

    def check_data(self, input_shape=None, num_classes=None):
        """A one-line error when the data does not fit the model (the model fixes both)."""
        if input_shape is not None and tuple(input_shape) != self.input_shape:
            raise UsageError(f"The dataset's images do not fit the model. Received: image shape {tuple(input_shape)}, "
                             f"model={self.name!r} takes {self.input_shape}.")
        if num_classes is not None and int(num_classes) != self.num_classes:
            raise UsageError(f"The dataset's classes do not fit the model. Received: {int(num_classes)} classes, "
                             f"model={self.name!r} has {self.num_classes} outputs.")

    def search_space(self, lane=1, num_classes=None, input_shape=None):
        """The adapted search space (candidates rounded to ``lane``), checked against the data."""
        self.check_data(input_shape, num_classes)
        return self._space if lane == 1 else self._build_space(lane)

    def builder(self, widths, input_shape, num_classes, policy, weight_decay, name):
        # the adapter and Keras load TensorFlow: nce_tf.sources stays TF-free for the tools' flag checks
        from nce_tf.adapter.derived_model import build_derived

        self.check_data(input_shape, num_classes)
        for row, w in zip(self._space.rows, widths):
            if row.frozen and w != row.n:
                raise UsageError(f"Layer {row.name!r} of {self.name} keeps its width (the first conv and the "
                                 f"classifier's input are pinned). Received: {w}. Allowed: {row.n}.")
        return build_derived(self._space, widths, policy, weight_decay, name=self.model.name)
