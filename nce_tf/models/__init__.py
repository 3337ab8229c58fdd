"""The nce-tf model zoo (see :mod:`nce_tf.models.zoo`) and the quantization policy."""

from nce_tf.models.policy import QuantPolicy
from nce_tf.models.zoo import (
    MAX_EXPANSION,
    MODEL_NAMES,
    MODELS,
    ModelSpec,
    build_model,
    check_widths,
    default_widths,
    get_spec,
    width_names,
)

__all__ = [
    "MAX_EXPANSION", "MODEL_NAMES", "MODELS", "ModelSpec", "QuantPolicy", "build_model",
    "check_widths", "default_widths", "get_spec", "width_names",
]
