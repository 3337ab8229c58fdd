"""The ops of a search graph, one small class per kind, found by :func:`op_of` (see ``base``).

- :mod:`~nce_tf.search.ops.base`: the ``Op`` interface and the registry;
- :mod:`~nce_tf.search.ops.weighted`: ``conv``, ``dwconv``, ``bn``, ``fc``, ``dense``;
- :mod:`~nce_tf.search.ops.follow`: activations, pooling, identity;
- :mod:`~nce_tf.search.ops.structure`: ``input``, ``add``, ``concat``, ``flatten``;
- :mod:`~nce_tf.search.ops.preprocess`: ``Rescaling`` / ``Normalization`` at the input;
- :mod:`~nce_tf.search.ops.excite`: squeeze-and-excitation (keepdims pooling, reshape, gate);
- :mod:`~nce_tf.search.ops.arithmetic`: MobileNetV3's hard sigmoid written in ``keras.ops``;
- :mod:`~nce_tf.search.ops.conv_head`: MobileNet's 1x1 conv classifier;
- :mod:`~nce_tf.search.ops.keras_args`: the user's layer arguments in a derived network;
- :mod:`~nce_tf.search.ops.keras_read`: the checks and refusals of reading a user's layer.

Each op also names the Keras layer types it reads (``keras_types``): :func:`keras_op` is the one
place that maps a Keras layer to its op, for the adapter, the Keras cost count, float
initialisation and the TFLite export.
"""

from nce_tf.search.ops import follow, structure, weighted  # noqa: F401  (registers the ops)
from nce_tf.search.ops import arithmetic, conv_head, excite, preprocess  # noqa: F401  (registers the ops)
from nce_tf.search.ops.base import (KERAS_OPS, OPS, CostTerms, DeriveContext, Forward, InheritContext, Op, keras_op,
                                    op_of, register)
from nce_tf.search.ops.follow import Act
from nce_tf.search.ops.excite import Gate
from nce_tf.search.ops.structure import INPUT, Add, Concat, Input
from nce_tf.search.ops.weighted import Classifier, Conv

__all__ = ["OPS", "KERAS_OPS", "Op", "op_of", "keras_op", "register", "CostTerms", "Forward", "DeriveContext",
           "InheritContext", "INPUT", "Input", "Add", "Concat", "Gate", "Act", "Conv", "Classifier"]
