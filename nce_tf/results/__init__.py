"""The results layer: per-run records committed under ``results/`` and the README tables made from them.

- :mod:`nce_tf.results.records`: one JSON line per finished run (kind, model, bits, seeds, widths,
  costs, accuracy, settings, provenance), read off its work directory; appended to a
  ``results/NAME.jsonl`` file by ``nce-tf results collect``;
- :mod:`nce_tf.results.tables`: every generated README table, defined once (its records, rows,
  columns, mean +- std over seeds, a footnote naming the commits the rows came from);
- :mod:`nce_tf.results.readme`: the README's ``<!-- NAME:begin -->`` / ``<!-- NAME:end -->``
  blocks regenerated (``nce-tf results readme``) or checked (``--check``, and a test).

Nothing here imports TensorFlow.
"""
