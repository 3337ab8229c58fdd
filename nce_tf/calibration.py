"""Activation-clip calibration: the clip of least squared error for a uniform quantizer (numpy only).

Used by float initialisation (:func:`nce_tf.train.float_init.calibrate_pact`) and by a search started
from a trained network (:func:`nce_tf.adapter.from_trained.pact_clips_from_stats`).

Example:

>>> import numpy as np
>>> round(mse_clip(np.abs(np.random.default_rng(0).normal(size=100000)), bits=2), 1)
2.0
"""

import numpy as np


def mse_clip(values, bits):
    """The PACT clip ``a`` with the least mean squared error between PACT and ReLU on ``values``.

    Args:
        values: activations (before the ReLU); only the positive ones matter (ReLU and PACT both
            give 0 elsewhere).
        bits: the activation bits (levels ``k a / (2^bits - 1)``).

    Returns:
        The best of the 5th, 6th, ..., 99th percentiles of the positive values and 32 even steps from
        the 99th percentile to the largest value, or ``None`` when none is positive.
    """
    v = np.asarray(values, np.float64).ravel()
    v = v[v > 0]
    if not v.size:
        return None
    n = 2 ** int(bits) - 1
    percentiles = np.quantile(v, np.linspace(0.05, 0.99, 95))
    candidates = np.unique(np.concatenate([percentiles, np.linspace(percentiles[-1], v.max(), 33)]))
    errors = [np.mean((np.round(np.minimum(v, a) * (n / a)) * (a / n) - v) ** 2) for a in candidates]
    return float(candidates[int(np.argmin(errors))])
