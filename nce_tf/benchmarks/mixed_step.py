"""What a mixed-precision policy does to step time: W2A2 training and search steps, mixed vs float32.

Two pairs, each the same network built twice (under ``float32`` and under the mixed policy, by
:func:`nce_tf.mixed_precision.policy_scope`), with the same batch, compiled the same way:

- ``train``: a W2A2 QAT training step of the zoo network (``train_on_batch`` of the network
  ``nce-tf train`` trains);
- ``search``: a bi-level search step of its super-net at K = 8 live candidates per row (the start
  of an NCE search: a weight step and an architecture step).

Each pair is timed one step of each policy after the other (so load on a shared machine hits both
alike), after warm-up steps that absorb tracing and oneDNN primitive creation; medians are reported
and ``ratio = mixed_step / float32_step`` (below 1: the mixed policy is faster).

On a CPU without bf16 arithmetic (no AVX512-BF16 / AMX) TensorFlow emulates bfloat16 convolutions
through conversions, so ``mixed_bfloat16`` is expected to be slower than float32 there; GPUs with
16-bit tensor cores (float16 from Volta, bfloat16 from Ampere) and TPUs are where the mixed policies
pay.  The quantizers compute in float32 under every policy (:mod:`nce_tf.quant.base`), a fixed cost
that the 16-bit convs do not shrink.
"""

import statistics
import time

import keras
import numpy as np

from nce_tf import mixed_precision, models
from nce_tf.benchmarks.search_step import supernet_step
from nce_tf.models import QuantPolicy
from nce_tf.sources import build_space


def _train_step(model, batch_size, policy, seed):
    spec = models.get_spec(model)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch_size, *spec.input_shape)).astype("float32")
    y = rng.integers(0, spec.num_classes, batch_size)
    with mixed_precision.policy_scope(policy):
        net = models.build_model(model, policy=QuantPolicy(w_bits=2, a_bits=2), weight_decay=5e-4)
        net.compile(keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                    keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    return lambda: net.train_on_batch(x, y)


def _search_step(model, batch_size, policy, seed, num_candidates=8):
    with mixed_precision.policy_scope(policy):
        _, step, _ = supernet_step(build_space(model), QuantPolicy(w_bits=2, a_bits=2), num_candidates, batch_size,
                                   seed)
    return step


def _interleaved(steps_of, steps, warmup_steps):
    """Medians of each step function's time, the functions timed one after the other ``steps`` times."""
    for step in steps_of.values():
        for _ in range(warmup_steps):
            step()
    times = {name: [] for name in steps_of}
    for _ in range(steps):
        for name, step in steps_of.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def run(model="resnet20", batch_size=128, steps=20, warmup_steps=5, policy="mixed_bfloat16", seed=0, log=print):
    """Both pairs; returns a dict with ``train_ratio`` and ``search_ratio`` (mixed / float32) and the medians.

    Args:
        model: zoo model.
        batch_size: batch of a training step, and of each half of a search step.
        steps: timed steps per policy and pair.
        warmup_steps: untimed steps first.
        policy: the mixed policy (``mixed_bfloat16`` or ``mixed_float16``).
    """
    out = {"model": model, "batch_size": batch_size, "steps": steps, "policy": policy, "search_candidates": 8}
    for kind, make in (("train", _train_step), ("search", _search_step)):
        medians = _interleaved({p: make(model, batch_size, p, seed) for p in ("float32", policy)}, steps, warmup_steps)
        ratio = medians[policy] / medians["float32"]
        log(f"{model} W2A2 {kind} step: float32 {medians['float32'] * 1e3:.0f} ms, {policy} "
            f"{medians[policy] * 1e3:.0f} ms, ratio {ratio:.3f}")
        out.update({f"{kind}_float32_step_s": medians["float32"], f"{kind}_mixed_step_s": medians[policy],
                    f"{kind}_ratio": ratio})
    return out
