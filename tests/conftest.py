"""Test session set-up: two logical CPU devices, so tests can run MirroredStrategy here.

The logical devices must be configured before TensorFlow runs its first op, which is
why this happens at import time of the conftest (pytest loads it first).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(_cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
