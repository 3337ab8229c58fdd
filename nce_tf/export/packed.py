"""``weights_2bit.npz``: every quantized layer's kernel as packed b-bit codes, for accelerators.

Format (a plain ``.npz``, read with ``allow_pickle=False``; nothing in it can run code):

- ``meta``: a JSON string: ``{"format": "nce_tf.packed/1", "model": ..., "widths": [...],
  "layers": [{"name", "index", "shape", "bits", "kind", "per_channel", "count"}, ...]}``
  (``widths`` and ``model`` rebuild the network with ``nce_tf.models.build_model``);
- ``codes_<index>``: uint8, the layer's codes in C order (``kernel.flatten()``), packed
  ``8 / bits`` per byte, little-endian within a byte (code ``i`` of a 2-bit layer sits in bits
  ``2 (i mod 4)`` and up of byte ``i // 4``);
- ``step_<index>``: float32, the grid step: a scalar, or one per output channel, shaped as the
  kernel's output axes (a conv's or dense layer's last, ``[O]``; a depthwise conv's last two,
  ``[C, M]``), so that ``ints * step`` broadcasts.

A code ``c`` stands for the integer ``2c - (2^b - 1)`` on a zero-free grid (SAWB, DoReFa; at 2
bits ``{-3, -1, 1, 3}``) or ``c - (2^(b-1) - 1)`` on a narrow grid (``uniform``); the weight is
that integer times the step (:mod:`nce_tf.export.grid`).  Float layers (first conv, classifier,
shortcuts by default) and BN are not in this file: they stay in ``model.keras``.

Example::

    layers = read_packed("runs/qs/export/weights_2bit.npz")
    w = layers["s1_b0_a_conv"].values()          # == model.get_layer(...).quantized_kernel()
"""

import json

import numpy as np

from nce_tf.errors import UsageError
from nce_tf.export.grid import IntegerGrid, integer_grid

FORMAT = "nce_tf.packed/1"


def pack_codes(codes, bits):
    """Packs non-negative codes ``< 2^bits`` into bytes (``8 / bits`` codes per byte for 1, 2, 4, 8)."""
    codes = np.asarray(codes, "uint8").ravel()
    bit_planes = np.unpackbits(codes[:, None], axis=1, bitorder="little")[:, :bits]
    return np.packbits(bit_planes.ravel(), bitorder="little")


def unpack_codes(packed, bits, count):
    bit_planes = np.unpackbits(np.asarray(packed, "uint8"), bitorder="little")[: count * bits]
    weights = (1 << np.arange(bits)).astype("uint16")
    return (bit_planes.reshape(count, bits) * weights).sum(1).astype("uint8")


def quantized_layers(model):
    """The layers of ``model`` whose kernel has a weight quantizer, in model order."""
    return [layer for layer in model.layers if getattr(layer, "kernel_quantizer", None) is not None]


def write_packed(model, path, model_name=None, widths=None):
    """Writes the packed file of ``model``'s quantized layers to ``path``; returns its ``meta``."""
    arrays, layers = {}, []
    for i, layer in enumerate(quantized_layers(model)):
        g = integer_grid(layer)
        arrays[f"codes_{i}"] = pack_codes(g.codes, g.bits)
        arrays[f"step_{i}"] = np.asarray(g.step, "float32")
        layers.append({"name": layer.name, "index": i, "shape": list(g.ints.shape), "bits": g.bits,
                       "kind": g.kind, "per_channel": bool(np.ndim(g.step)), "count": int(g.ints.size)})
    meta = {"format": FORMAT, "model": model_name, "widths": widths, "layers": layers}
    with open(path, "wb") as f:
        np.savez(f, meta=np.array(json.dumps(meta)), **arrays)
    return meta


def read_packed(path):
    """Reads a packed file: ``{layer name: IntegerGrid}`` (``.values()`` gives the float weights)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            out = {}
            for entry in meta["layers"]:
                i, bits, kind = entry["index"], entry["bits"], entry["kind"]
                codes = unpack_codes(z[f"codes_{i}"], bits, entry["count"]).astype("int32")
                ints = 2 * codes - (2**bits - 1) if kind == "zero_free" else codes - (2 ** (bits - 1) - 1)
                out[entry["name"]] = IntegerGrid(ints=ints.reshape(entry["shape"]), step=z[f"step_{i}"],
                                                 kind=kind, bits=bits)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        raise UsageError(f"Not a valid packed weight file ({type(e).__name__}: {e}). Received: {path!r}") from None
    return out
