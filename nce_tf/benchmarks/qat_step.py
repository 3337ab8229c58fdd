"""What 2-bit fake quantization costs in training: a W2A2 QAT step against a float step.

Both are the project's own ResNet (``nce_tf.models.build_model``) with the same widths and
batch, compiled the same way, timed through ``train_on_batch`` one step each, interleaved in
one process after warm-up steps; medians are reported and ``ratio = qat_step / float_step``.
"""

import statistics
import time

import keras
import numpy as np

from nce_tf import models


def _compiled(name, policy):
    model = models.build_model(name, policy=policy, weight_decay=5e-4)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    return model


def run(model="resnet20", batch_size=128, steps=20, warmup_steps=5, w_bits=2, a_bits=2, log=print):
    spec = models.get_spec(model)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch_size, *spec.input_shape)).astype("float32")
    y = rng.integers(0, spec.num_classes, batch_size)
    qat = _compiled(model, models.QuantPolicy(w_bits=w_bits, a_bits=a_bits))
    flt = _compiled(model, models.QuantPolicy())
    for _ in range(warmup_steps):
        qat.train_on_batch(x, y)
        flt.train_on_batch(x, y)
    t_q, t_f = [], []
    for _ in range(steps):
        for m, times in ((qat, t_q), (flt, t_f)):
            start = time.perf_counter()
            m.train_on_batch(x, y)
            times.append(time.perf_counter() - start)
    q, f = statistics.median(t_q), statistics.median(t_f)
    log(f"{model} W{w_bits}A{a_bits} QAT step {q * 1e3:.0f} ms vs float {f * 1e3:.0f} ms: ratio {q / f:.3f}")
    return {"model": model, "batch_size": batch_size, "steps": steps, "qat_step_s": q, "float_step_s": f,
            "ratio": q / f}
