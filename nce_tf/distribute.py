"""``--strategy``: a small string-keyed factory of ``tf.distribute`` strategies (TF Model Garden style).

=================  ==========================================================================
``default``        TensorFlow's default strategy: one device (the first GPU if any, else CPU).
``mirrored``       ``tf.distribute.MirroredStrategy`` over every local GPU, or, with
                   ``--cpu_replicas=N``, over N logical CPU devices (how the tests run it on a
                   CPU-only machine; the logical devices are configured before any op runs).
``multi_worker``   ``tf.distribute.MultiWorkerMirroredStrategy`` configured from ``TF_CONFIG``
                   (``{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker",
                   "index": i}}``); start the same command on every worker.
=================  ==========================================================================

What a distributed run means (the same for training and search):

- ``--batch_size`` / ``--search_batch_size`` are the GLOBAL batch, split evenly over the replicas
  (so they must be a multiple of the replica count).  The learning rate is used as given: a
  run on R replicas with the same global batch is the same run as on one device (the tests
  check this to 1e-5); scale the learning rate yourself if you scale the global batch.
- Losses are averaged over the global batch; the batch-independent terms (weight decay, the
  search's cost constraint) are counted once, not once per replica (``SuperNet.train_step``).
- Batch normalisation uses global-batch statistics (zoo: Keras' synchronized BN; search:
  :class:`~nce_tf.search.layers.SearchConv2D` all-reduces its moments).
- The search's Gumbel sample is SHARED: one sample per step, the same on every replica (every
  replica draws from the same mirrored ``SeedGenerator`` state), so a replica count does not
  change the search; expansion is decided eagerly between steps from the mirrored ``alpha``
  and applied to the mirrored variables, identically everywhere.
- ``multi_worker``: every worker computes the same updates and writes the full state (so each
  can resume on its own).  The tools keep the workers apart on a shared file system: the chief
  (task ``chief``, or ``worker`` 0 when the cluster has no chief) writes ``--workdir``, worker i
  writes ``--workdir/worker<i>/`` (:func:`worker_workdir`); the chief's is the one to keep.  The strategy is
  a ``MultiWorkerMirroredStrategy`` whose ``reduce`` also takes what Keras 3's ``fit`` passes it
  (a nest, a scalar with ``axis=0``), see ``_multi_worker_strategy``; ``tests/test_multi_worker.py``
  runs a two-worker search on 127.0.0.1.

Validation (:func:`check`) needs no TensorFlow; :func:`get_strategy` builds the strategy and
must run before TensorFlow executes its first op when ``--cpu_replicas`` is used.
"""

import json
import os

from nce_tf.errors import UsageError

STRATEGIES = ("default", "mirrored", "multi_worker")
MAX_CPU_REPLICAS = 64

_CACHE = {}


def check(strategy, cpu_replicas=0):
    """Validates ``--strategy`` / ``--cpu_replicas`` (and ``TF_CONFIG`` for ``multi_worker``)."""
    if strategy not in STRATEGIES:
        raise UsageError(f"Invalid strategy. Received: strategy={strategy!r}. Allowed: {', '.join(STRATEGIES)}.")
    if isinstance(cpu_replicas, bool) or not isinstance(cpu_replicas, int) or not 0 <= cpu_replicas <= MAX_CPU_REPLICAS:
        raise UsageError(f"Invalid cpu_replicas. Received: cpu_replicas={cpu_replicas!r}. "
                         f"Allowed: 0 (use the GPUs) .. {MAX_CPU_REPLICAS}.")
    if cpu_replicas and strategy != "mirrored":
        raise UsageError(f"cpu_replicas applies to --strategy=mirrored only. Received: strategy={strategy!r}, "
                         f"cpu_replicas={cpu_replicas}.")
    if strategy == "multi_worker":
        worker_count(os.environ.get("TF_CONFIG", ""))


def worker_count(tf_config):
    """The number of workers in a ``TF_CONFIG`` string; one-line errors for a missing or bad one."""
    if not tf_config:
        raise UsageError("strategy=multi_worker needs the TF_CONFIG environment variable. Received: TF_CONFIG unset. "
                         'Expected e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                         '"task": {"type": "worker", "index": 0}}.')
    try:
        cfg = json.loads(tf_config)
        workers = cfg["cluster"]["worker"]
        task = cfg["task"]
        ok = (isinstance(workers, list) and workers and all(isinstance(w, str) and ":" in w for w in workers)
              and task.get("type") in ("worker", "chief") and isinstance(task.get("index"), int)
              and 0 <= task["index"] < len(workers))
    except (ValueError, KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise UsageError(f"Invalid TF_CONFIG for strategy=multi_worker. Received: TF_CONFIG={tf_config[:120]!r}. "
                         'Expected {"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", '
                         '"index": i}} with i a valid worker index.')
    return len(workers)


def worker_workdir(workdir, strategy):
    """Where this process writes: ``workdir``, or ``workdir/worker<i>`` for a non-chief worker of
    ``multi_worker`` (two workers writing one checkpoint or ``arch.json`` would corrupt it)."""
    if strategy != "multi_worker" or not workdir:
        return workdir
    tf_config = os.environ.get("TF_CONFIG", "")
    worker_count(tf_config)
    cfg = json.loads(tf_config)
    task = cfg["task"]
    chief = task["type"] == "chief" or (task["index"] == 0 and "chief" not in cfg["cluster"])
    return workdir if chief else os.path.join(workdir, f"{task['type']}{task['index']}")


def get_strategy(strategy="default", cpu_replicas=0):
    """The ``tf.distribute.Strategy`` named by ``strategy`` (see the module doc).

    Strategies are cached per ``(strategy, cpu_replicas)``: two ``MirroredStrategy`` objects in
    one process collide on their collective keys, and a library user (or a test) may run
    several jobs in one process.
    """
    check(strategy, cpu_replicas)
    key = (strategy, cpu_replicas)
    if key in _CACHE:
        return _CACHE[key]
    # TensorFlow on first use: the strategy settings are checked without it
    import tensorflow as tf

    if strategy == "default":
        result = tf.distribute.get_strategy()
    elif strategy == "mirrored":
        devices = None
        if cpu_replicas:
            devices = [d.name for d in _logical_cpus(tf, cpu_replicas)[:cpu_replicas]]
        result = tf.distribute.MirroredStrategy(devices)
    else:
        result = _multi_worker_strategy(tf)
    _CACHE[key] = result
    return result


def _multi_worker_strategy(tf):
    """``MultiWorkerMirroredStrategy`` with a ``reduce`` that Keras 3's ``Model.fit`` can call.

    Keras 3.15's TF trainer calls ``strategy.reduce`` in two ways that only a multi-worker
    ``MultiWorkerMirroredStrategy`` rejects (``MirroredStrategy`` and one worker take another
    path; keras-team/keras#20585, tensorflow/tensorflow#72388):

    - ``fit`` / ``evaluate`` first reduce a whole data batch, a nest such as ``(x, y)``
      (``_maybe_symbolic_build``, even when the model is built already).  ``Strategy.reduce``
      takes a single value ("TODO(josh11b): support `value` being a nest"); with several
      workers the nest goes to a collective all-reduce: "Attempt to convert a value
      (PerReplica:...) with an unsupported type ... to a Tensor".
    - every step reduces the step's (scalar) logs with ``axis=0``: "Invalid reduction
      dimension 0 for input with 0 dimensions".

    Here a nest is reduced leaf by leaf, and a scalar with ``axis`` given is reduced across the
    replicas only (``axis=None``: the mean of the replicas' values, which is what Keras computes
    for ``MirroredStrategy``).  Everything else is ``MultiWorkerMirroredStrategy.reduce``.  Every
    worker makes these calls at the same points of ``fit``, so the collectives match.
    """
    base = tf.distribute.MultiWorkerMirroredStrategy

    class MultiWorkerMirroredStrategy(base):
        def reduce(self, reduce_op, value, axis):
            if tf.nest.is_nested(value):  # a PerReplica value is one leaf, not a nest
                return tf.nest.map_structure(lambda v: None if v is None else self.reduce(reduce_op, v, axis), value)
            local = self.experimental_local_results(value)[0]
            if axis is not None and tf.TensorShape(getattr(local, "shape", ())).rank == 0:
                axis = None  # a scalar has no batch axis: the mean over the replicas
            return base.reduce(self, reduce_op, value, axis)

    return MultiWorkerMirroredStrategy()


def _logical_cpus(tf, n):
    """At least ``n`` logical CPU devices: configured now, or already there (a test session)."""
    have = tf.config.list_logical_devices("CPU") if tf.config.get_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0]) else []
    if len(have) >= n:
        return have
    try:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:
        raise UsageError(f"cpu_replicas must be set before TensorFlow starts running. Received: cpu_replicas={n}, "
                         f"but {len(tf.config.list_logical_devices('CPU'))} logical CPU devices exist already "
                         "in this process.") from None
    return tf.config.list_logical_devices("CPU")


def check_global_batch(strategy, batch_size, name="batch_size"):
    """One-line error unless the global batch splits evenly over the strategy's replicas."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise UsageError(f"The global batch must split evenly over the replicas. Received: {name}={batch_size}, "
                         f"{replicas} replicas. Allowed: a multiple of {replicas}.")


def shard_by_data(dataset):
    """``dataset`` with DATA auto-sharding: each worker takes its slice of every global batch.

    In-memory datasets have no files to shard by; naming the policy avoids the FILE attempt
    (and its warning) under ``multi_worker``.  Harmless on one machine.
    """
    # TensorFlow on first use: the strategy settings are checked without it
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
