"""Seeds derived from a run's seed, so that runs which ought to be independent are, by construction.

One integer seed per run is what a user sets (``--seed``); several random streams hang off it.
Reusing the seed itself for each of them (or ``seed + 1``) makes streams of *different* runs
coincide: a search's architecture half read with ``seed + 1`` was the next search seed's weight
half, and every structure trained with one training seed drew its initial kernels from one Keras
stream, so same-shape convs of two structures started identical.  Here each stream is a
``numpy.random.SeedSequence`` of ``(seed, a stable hash of what the stream is for)``: ``zlib.crc32``
of a JSON text, the same in every process and Python version (``hash()`` of a string is not).

Example:

>>> stream_seed(3, "search/arch_data") != stream_seed(4, "search/weight_data")
True
>>> structure_seed(1000, "resnet8", [16, 16, 32]) == structure_seed(1000, "resnet8", [16, 16, 32])
True
"""

import json
import zlib

import numpy as np


def _derive(seed, key):
    """A 31-bit seed from ``seed`` and the JSON-able ``key`` (fits every seed argument: numpy, Keras, tf.data)."""
    text = json.dumps(key, separators=(",", ":"), sort_keys=True)
    state = np.random.SeedSequence([int(seed), zlib.crc32(text.encode("utf-8"))]).generate_state(1)
    return int(state[0]) & 0x7FFFFFFF


def stream_seed(seed, purpose):
    """The seed of one named stream of a run seeded ``seed`` (``purpose``: e.g. ``"search/weight_data"``)."""
    return _derive(seed, ["stream", purpose])


def structure_seed(seed, model, widths):
    """The global seed a training's initialisation draws from: its training seed and the structure it
    trains (model name and width list), so two structures trained with one seed never share initial
    kernels by coincidence, and one structure with one seed starts from the same weights every time.

    Args:
        seed: the training seed (``--seed``).
        model: the model's name (``"resnet20"``, ``"custom"`` for a ``model_fn``).
        widths: its width list, ``None`` when unknown before it is built (a ``model_fn``'s).
    """
    return _derive(seed, ["structure", model, None if widths is None else [int(w) for w in widths]])
