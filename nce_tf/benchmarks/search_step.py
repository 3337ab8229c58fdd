"""How much a search step costs against plain QAT training of the network it is searching.

``ratio = search_step / (2 * plain_step)``: a search step is a weight step AND an architecture
step (two forward/backward passes over a batch each), so the fair reference is two plain W2A2
training steps of the project's own QAT network (the one ``tools/train.py`` trains), built at the
per-layer MEAN widths the search steps computed (``SuperNet.mean_widths``: the conv output width
``C* = max(C_a, C_b)`` of each row, averaged over the measured steps).  1.0 means the super-net's
machinery (sampling, the per-candidate BN, CWI, the cost terms) is free.

Both are timed through ``train_on_batch`` (the same Keras entry point, so the same Python
overhead), interleaved one step each in one process, after warm-up steps that absorb tracing
and oneDNN primitive creation; medians are reported.  Measured twice: at K = 8 (the start of
an NCE search) and with every row expanded to K = 16 (candidates up to 2X).
"""

import statistics
import time

import keras
import numpy as np

from nce_tf import models
from nce_tf.models import QuantPolicy
from nce_tf.sources import build_space
from nce_tf.search.supernet import SuperNet


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _plain_model(name, widths, policy, weight_decay):
    model = models.build_model(name, widths, policy=policy, weight_decay=weight_decay)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    return model


def supernet_step(space, policy, num_candidates, batch_size, seed, alpha_std=0.0):
    """A super-net of ``space`` with ``num_candidates`` live per row, TAS's optimizers, arch updates on,
    and one fixed random batch per half; returns ``(net, step, (x_w, y_w))`` where ``step()`` runs one
    search step (a weight step and an architecture step).  ``alpha_std > 0`` draws alpha from
    ``N(0, alpha_std)`` first, so the sampled pairs are not all uniform."""
    net = SuperNet(space, policy, weight_decay=5e-4, seed=seed)
    net.num_candidates.assign(np.full(len(space.rows), num_candidates, "int32"))
    rng = np.random.default_rng(seed)
    if alpha_std:
        net.alpha.assign(rng.normal(0, alpha_std, net.alpha.shape).astype("float32"))
    net.configure_optimizers(keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                             keras.optimizers.Adam(1e-3, beta_1=0.5, beta_2=0.999))
    net.set_arch_updates(True)
    shape = (batch_size, *space.input_shape)
    x_w, x_a = (rng.normal(size=shape).astype("float32") for _ in range(2))
    y_w, y_a = (rng.integers(0, space.num_classes, batch_size) for _ in range(2))
    return net, lambda: net.train_on_batch((x_w, y_w), (x_a, y_a)), (x_w, y_w)  # train_step's two halves


def measure(model="resnet20", num_candidates=8, batch_size=128, steps=20, warmup_steps=5,
            w_bits=2, a_bits=2, seed=0, log=print):
    """Times search steps and plain QAT steps; returns a dict of medians and the ratio."""
    policy = QuantPolicy(w_bits=w_bits, a_bits=a_bits)
    space = build_space(model)
    net, search, (x_w, y_w) = supernet_step(space, policy, num_candidates, batch_size, seed, alpha_std=0.01)
    for _ in range(warmup_steps):
        search()
    net.width_sum.assign(np.zeros(len(space.rows), "float32"))
    net.width_steps.assign(0.0)
    for _ in range(steps):  # the widths these steps compute define the plain network
        search()
    mean_widths = net.mean_widths()
    widths = [max(1, int(round(w))) for w in mean_widths]
    plain = _plain_model(model, widths, policy, 5e-4)
    plain_step = lambda: plain.train_on_batch(x_w, y_w)  # noqa: E731
    for _ in range(warmup_steps):
        plain_step()
    search_times, plain_times = [], []
    for _ in range(steps):  # interleaved, so machine noise hits both alike
        search_times.append(_timed(search))
        plain_times.append(_timed(plain_step))
    s, p = statistics.median(search_times), statistics.median(plain_times)
    log(f"K={num_candidates}: search step {s * 1e3:.0f} ms, plain W{w_bits}A{a_bits} step at the mean widths "
        f"{p * 1e3:.0f} ms, ratio {s / (2 * p):.3f}")
    return {"search_step_s": s, "plain_step_s": p, "ratio": s / (2 * p), "mean_widths": [round(w, 2) for w in mean_widths],
            "plain_widths": widths}


def run(model="resnet20", batch_size=128, steps=20, warmup_steps=5, log=print):
    """Both measurements (K = 8 and K = 16) as one dict with ``ratio_k8`` and ``ratio_k16``."""
    out = {"model": model, "batch_size": batch_size, "steps": steps}
    for k in (8, 16):
        r = measure(model, k, batch_size, steps, warmup_steps, log=log)
        out[f"ratio_k{k}"] = r.pop("ratio")
        out.update({f"{key}_k{k}": v for key, v in r.items()})
    return out
