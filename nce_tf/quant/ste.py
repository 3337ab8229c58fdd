"""Straight-through rounding.

``round_ste(x)`` rounds in the forward pass and passes the gradient through unchanged
(Bengio et al., 2013; the "STE" of Hubara et al., 2016 and DoReFa-Net).  Every weight
quantizer here composes it with a clip, so the overall gradient is 1 inside the clip
range and 0 outside.
"""

import tensorflow as tf


def round_ste(x):
    """Rounds half to even forward; identity gradient backward."""
    return x + tf.stop_gradient(tf.round(x) - x)
