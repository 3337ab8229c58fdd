"""Deployment: ``.keras``, SavedModel, int8 and int4 TFLite that keep the 2-bit grids, packed 2-bit weights.

- :mod:`~nce_tf.export.grid`: a quantized kernel as integers times a step;
- :mod:`~nce_tf.export.packed`: ``weights_2bit.npz`` writer and reader;
- :mod:`~nce_tf.export.tflite_graph`: the int8-exact QAT graph and its conversion;
- :mod:`~nce_tf.export.int4`: the int8 file with its low-bit filters stored as int4;
- :mod:`~nce_tf.export.delegation`: LiteRT interpreters per kernel set, which ops a delegate took;
- :mod:`~nce_tf.export.exporter`: ``run_export`` behind ``tools/export.py``.
"""

import importlib


def __getattr__(name):
    homes = {"run_export": "exporter", "export_model": "exporter", "read_packed": "packed", "write_packed": "packed",
             "convert": "tflite_graph", "integer_grid": "grid", "run_tflite": "exporter", "to_int4": "int4"}
    if name in homes:
        return getattr(importlib.import_module(f"nce_tf.export.{homes[name]}"), name)
    raise AttributeError(f"module 'nce_tf.export' has no attribute {name!r}")


__all__ = ["run_export", "export_model", "read_packed", "write_packed", "convert", "integer_grid", "run_tflite",
           "to_int4"]
