"""Test session set-up: two logical CPU devices, so tests can run MirroredStrategy here.

The logical devices must be configured before TensorFlow runs its first op, which is
why this happens at import time of the conftest (pytest loads it first).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Under pytest-xdist (README: -n 2) each worker, and the tools it starts, computes with one
# intra-op thread: two workers already use the two cores, and two-thread ops in each would
# only time-share them.  Inter-op threads stay TF's default (MirroredStrategy's replicas and
# collectives need to run side by side).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(_cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
