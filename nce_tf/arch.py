"""The architecture artifact: ``arch.json``, a plain description of a network's widths.

A search ends by writing one; the trainer, the cost counter and the exporter rebuild the
network from it.  It is plain JSON, read with ``json.load``: loading it never runs code.

Format (keys beyond these are kept but not required)::

    {"format": "nce_tf.arch/1", "model": "resnet20", "widths": [16, 12, ...],
     "width_names": ["stem_conv", ...], "macs": 40813184, "params": 272474}

Example:

>>> import nce_tf, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "arch.json")
>>> nce_tf.arch.save_arch(path, "resnet8", nce_tf.models.default_widths("resnet8"))
>>> nce_tf.arch.load_arch(path).widths
[16, 16, 16, 32, 32, 64, 64]
"""

import dataclasses
import json
import os

from nce_tf.errors import UsageError
from nce_tf.io_utils import atomic_write_text

FORMAT = "nce_tf.arch/1"


@dataclasses.dataclass
class Arch:
    """A model name, its width list and whatever else the file recorded.

    Attributes:
        model: the model name (a zoo name or ``keras:PATH``).
        widths: one output width per searchable layer, in network order.
        extra: everything else the record holds (costs, ``input_shape``, bits, search settings).
        path: the ``arch.json`` it was read from or written to (``""``: in memory only).
    """

    model: str
    widths: list
    extra: dict = dataclasses.field(default_factory=dict)
    path: str = dataclasses.field(default="", compare=False)

    @classmethod
    def from_record(cls, record, path=""):
        """The :class:`Arch` of a record as :func:`save_arch` writes it (e.g. what a search returns),
        without reading a file: its widths were checked when it was made."""
        extra = {k: v for k, v in record.items() if k not in ("model", "widths")}
        return cls(model=record["model"], widths=list(record["widths"]), extra=extra, path=path)


def load_arch(path, expected_model=None):
    """Reads and validates an ``arch.json``.

    Args:
        path: file path.
        expected_model: if given, the file must describe this model.

    Returns:
        An :class:`Arch` whose widths passed :func:`nce_tf.models.check_widths`.
    """
    # nce_tf.sources sits above this package: reached lazily, to resolve a model name (WORKSPACE.md)
    from nce_tf.sources import check_widths, get_spec

    data = read_record(path)
    model = data["model"]
    get_spec(model)
    if expected_model is not None and model != expected_model:
        raise UsageError(
            f"Architecture file is for another model. Received: {model!r} in {path!r}. "
            f"Expected: {expected_model!r}."
        )
    try:
        widths = check_widths(model, data["widths"])
    except UsageError as e:
        raise UsageError(f"{e} (in {path!r})") from None
    return Arch.from_record({**data, "widths": widths}, path=path)


def read_record(path):
    """The JSON object of an ``arch.json`` with a string ``model`` and a ``widths`` entry,
    unchecked against the model (which may need TensorFlow to load: ``keras:PATH``)."""
    if not os.path.isfile(path):
        raise UsageError(f"Architecture file not found. Received: arch={path!r}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"Architecture file is not valid JSON ({e}). Received: arch={path!r}") from None
    if not isinstance(data, dict) or "model" not in data or "widths" not in data:
        raise UsageError(
            f"Architecture file must be a JSON object with 'model' and 'widths'. Received: arch={path!r}"
        )
    model = data["model"]
    if not isinstance(model, str):
        raise UsageError(f"Architecture 'model' must be a string. Received: model={model!r} in {path!r}")
    return data


def save_arch(path, model, widths, **extra):
    """Writes an ``arch.json`` atomically (a crash never leaves half a file)."""
    # nce_tf.sources sits above this package: reached lazily, to resolve a model name (WORKSPACE.md)
    from nce_tf.sources import check_widths, width_names

    widths = check_widths(model, widths)
    data = {"format": FORMAT, "model": model, "widths": widths, "width_names": width_names(model), **extra}
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
