"""oneDNN's primitive cache, sized for a search whose convolutions change shape at every step.

TensorFlow's CPU kernels run on oneDNN, which builds a *primitive* (a kernel compiled for one
shape) per convolution shape and pass, and keeps the last ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` of
them (default 1024).  A plain network has a few dozen shapes.  A super-net's conv takes the
producer's width ``c_in`` and its row's ``C* = max(C_a, C_b)``, both drawn afresh at every step:
up to ``K^2`` shapes per conv for the forward and each backward pass, ~15,000 for ResNet-20 at
``K = 16``.  With the default cache most of them are rebuilt when they come back.  Measured here
(ResNet-20, K = 16, the search-step benchmark's method: medians of interleaved steps, search step
over two plain W2A2 steps; three pairs of processes alternating in one sitting): 1.18, 1.18, 1.16
with the default capacity, 1.12, 1.06, 1.02 with 16384.

oneDNN reads the variable once, when the process creates its first primitive, so
:func:`widen_primitive_cache` runs where the tools import TensorFlow and where the super-net
module is imported: a script that imports ``nce_tf.search`` before it runs any convolution gets
it too.  A value the user set is kept.
"""

import os

CAPACITY = 16384


def widen_primitive_cache():
    """Sets ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` to :data:`CAPACITY` unless it is set already."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(CAPACITY))
