"""The paper's analyses as figures and the numbers behind them (``tools/analyze.py``).

- :mod:`~nce_tf.analysis.metrics`: SQNR of a quantized signal, Kendall's rank correlation, the
  per-layer channel-preference score of the paper's Fig. 4;
- :mod:`~nce_tf.analysis.channels`: original vs derived channels per layer (Fig. 5);
- :mod:`~nce_tf.analysis.stdev`: per-layer standard deviation of output activations and SQNR of
  the quantized activations for W32A32, W2A2 and the NCE-derived W2A2 network (Fig. 1).
"""
