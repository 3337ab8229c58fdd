"""``nce-tf bench search``, ``bench qat`` and ``bench mixed`` measure what they report: their timed steps run the
networks, widths and bit widths they name (not their speed).  ``search``: a super-net search step at K
candidates and a plain W2A2 training step; ``qat``: a W2A2 QAT step and a float step of one network.

``mixed``: a W2A2 training step and a K = 8 search step, each under float32 and a mixed policy.

``tfmot``'s comparison: its seed draws the data order on one fixed task; without tfmot, a one-line error.

The smallest configurations: ResNet-8, batches of 2, one or two timed steps, run eagerly (no tracing).
"""

import os
import time

import pytest
import tensorflow as tf

from nce_tf import models
from nce_tf.benchmarks import mixed_step, qat_step, search_step
from nce_tf.search.candidates import candidate_widths


def test_search_bench_times_the_supernet_and_the_plain_network_it_reports(monkeypatch):
    nets, plains, timed = [], [], []
    build_net, build_plain, time_step = search_step.SuperNet, search_step._plain_model, search_step._timed

    def recording_net(*args, **kwargs):
        nets.append(build_net(*args, **kwargs))
        return nets[-1]

    def recording_plain(*args, **kwargs):
        plains.append(build_plain(*args, **kwargs))
        return plains[-1]

    def recording_timed(fn):  # which network's optimizer one timed step advanced
        before = (int(nets[-1].weight_optimizer.iterations), int(nets[-1].arch_optimizer.iterations),
                  int(plains[-1].optimizer.iterations))
        seconds = time_step(fn)
        after = (int(nets[-1].weight_optimizer.iterations), int(nets[-1].arch_optimizer.iterations),
                 int(plains[-1].optimizer.iterations))
        timed.append(tuple(b - a for a, b in zip(before, after)))
        return seconds

    monkeypatch.setattr(search_step, "SuperNet", recording_net)
    monkeypatch.setattr(search_step, "_plain_model", recording_plain)
    monkeypatch.setattr(search_step, "_timed", recording_timed)
    # K = 16 (every row expanded to 2X), the heavier of the two measurements `run` makes.
    # Eagerly: the steps compute what the compiled ones do, and three steps cost less than tracing them.
    tf.config.run_functions_eagerly(True)
    try:
        out = search_step.measure("resnet8", 16, batch_size=2, steps=1, warmup_steps=0, log=lambda message: None)
    finally:
        tf.config.run_functions_eagerly(False)

    (net,), (plain,) = nets, plains
    # One timed search step (a weight step and an architecture step of the super-net, nothing of the
    # plain network), then one timed plain step (the plain network's optimizer only).
    assert timed == [(1, 1, 0), (0, 0, 1)]
    assert (net.num_candidates.numpy() == 16).all()  # the super-net at the K it reports
    assert out["ratio"] == out["search_step_s"] / (2 * out["plain_step_s"])
    # One measured step: each row's mean width is the width C* = max(C_a, C_b) that step computed, one of
    # the row's 16 live candidates (j n / 8, j <= 16); the plain network is built at them.
    n, names = models.default_widths("resnet8"), models.width_names("resnet8")
    assert all(w in candidate_widths(c) for w, c in zip(out["mean_widths"], n)), out["mean_widths"]
    assert out["plain_widths"] == [int(round(w)) for w in out["mean_widths"]]
    assert [plain.get_layer(name).filters for name in names] == out["plain_widths"]
    # Some row went past its 1X width (P(no row does) = 4^-7 for two uniform samples of 16 per row).
    assert any(w > c for w, c in zip(out["plain_widths"], n))
    # W2A2 like the search: its body convs quantize their weights to 2 bits.
    assert plain.get_layer(names[1]).kernel_quantizer.bits == 2
    # Every step was one of the benchmark's: 1 width-measuring and 1 timed search step; 1 timed plain step.
    assert int(net.weight_optimizer.iterations) == 2 and int(plain.optimizer.iterations) == 1


def test_qat_bench_times_a_w2a2_network_against_the_same_network_in_float(monkeypatch):
    built, calls = [], []
    compiled = qat_step._compiled

    def recording(name, policy):  # each network's training steps, in the order the benchmark runs them
        model = compiled(name, policy)
        index, step = len(built), model.train_on_batch

        def train_on_batch(x, y):
            calls.append((index, x.shape, y.shape))
            return step(x, y)

        model.train_on_batch = train_on_batch
        built.append(model)
        return model

    monkeypatch.setattr(qat_step, "_compiled", recording)
    tf.config.run_functions_eagerly(True)
    try:
        out = qat_step.run("resnet8", batch_size=2, steps=1, warmup_steps=1, log=lambda message: None)
    finally:
        tf.config.run_functions_eagerly(False)

    assert (out["model"], out["batch_size"], out["steps"]) == ("resnet8", 2, 1)
    assert out["ratio"] == out["qat_step_s"] / out["float_step_s"]
    qat, flt = built
    # One warm-up and one timed step of each, interleaved (QAT then float), on one batch of 2 images.
    assert calls == [(i, (2, 32, 32, 3), (2,)) for _ in range(2) for i in (0, 1)]
    assert int(qat.optimizer.iterations) == int(flt.optimizer.iterations) == 2
    # The same network: the zoo's ResNet-8 at its 1X widths, layer for layer.
    names, n = models.width_names("resnet8"), models.default_widths("resnet8")
    assert [layer.name for layer in qat.layers] == [layer.name for layer in flt.layers]
    assert [qat.get_layer(name).filters for name in names] == [flt.get_layer(name).filters for name in names] == n
    # W2A2 against float: the QAT network's body convs (every searched conv but the stem; the stem, the
    # shortcut projections and the classifier stay float, as in training) quantize their weights to 2
    # bits and its every activation is a 2-bit quantizer; the float network has no quantizer at all.
    assert [qat.get_layer(name).kernel_quantizer.bits for name in names[1:]] == [2] * (len(names) - 1)
    acts = [layer for layer in qat.layers if layer.name.endswith("_act")]
    assert acts and {a.quantizer.bits for a in acts} == {2}
    assert all(getattr(layer, "kernel_quantizer", None) is None and getattr(layer, "quantizer", None) is None
               for layer in flt.layers)


@pytest.mark.heavy
def test_mixed_bench_times_each_policy_on_its_own_network(monkeypatch):
    # The four networks the bench builds (a float32 and a mixed one per pair), the policy each computes
    # in, which network every timed step advanced (read off the optimizers' counters at each clock
    # reading), and the ratios from the medians it reports.
    built, readings = [], []
    build_model, build_supernet, perf_counter = mixed_step.models.build_model, mixed_step.supernet_step, time.perf_counter

    def recording_model(*args, **kwargs):
        built.append(build_model(*args, **kwargs))
        return built[-1]

    def recording_supernet(*args, **kwargs):
        net, step, batch = build_supernet(*args, **kwargs)
        built.append(net)
        return net, step, batch

    def reading_clock():
        readings.append([int((n.weight_optimizer if hasattr(n, "weight_optimizer") else n.optimizer).iterations)
                         for n in built] + [0] * (4 - len(built)))
        return perf_counter()

    monkeypatch.setattr(mixed_step.models, "build_model", recording_model)
    monkeypatch.setattr(mixed_step, "supernet_step", recording_supernet)
    monkeypatch.setattr(mixed_step.time, "perf_counter", reading_clock)
    tf.config.run_functions_eagerly(True)
    try:
        out = mixed_step.run("resnet8", batch_size=2, steps=2, warmup_steps=0, log=lambda message: None)
    finally:
        tf.config.run_functions_eagerly(False)
    assert [n.dtype_policy.name for n in built] == ["float32", "mixed_bfloat16"] * 2
    assert [n.compute_dtype for n in built] == ["float32", "bfloat16"] * 2
    # Each (start, stop) pair of clock readings brackets one step of one network, in the order
    # float32, mixed, float32, mixed for the training pair, then the same for the search pair.
    moved = [[i for i, (a, b) in enumerate(zip(start, stop)) if b != a]
             for start, stop in zip(readings[0::2], readings[1::2])]
    assert moved == [[0], [1], [0], [1], [2], [3], [2], [3]]
    assert all(int(n.arch_optimizer.iterations) == 2 for n in built[2:])  # search steps: both halves
    assert all((n.num_candidates.numpy() == 8).all() for n in built[2:])  # at the K it reports
    assert out["train_ratio"] == out["train_mixed_step_s"] / out["train_float32_step_s"]
    assert out["search_ratio"] == out["search_mixed_step_s"] / out["search_float32_step_s"]


def test_tfmot_comparison_seed_draws_the_data_order_on_one_fixed_task():
    from nce_tf.benchmarks import qat_compare

    def first_batch_and_test(seed):
        train, test, _ = qat_compare._data(8, seed)
        x, y = next(iter(train))
        tx = next(iter(test))[0]
        return x.numpy(), y.numpy(), tx.numpy()

    x0, y0, t0 = first_batch_and_test(0)
    x0b, y0b, _ = first_batch_and_test(0)
    x1, y1, t1 = first_batch_and_test(1)
    # one seed, one order; another seed, another order of the same test images (the task is fixed)
    assert (x0 == x0b).all() and (y0 == y0b).all()
    assert not (x0 == x1).all()
    assert (t0 == t1).all()


def test_tfmot_comparison_without_tfmot_is_a_one_line_error(tmp_path):
    import os
    import subprocess
    import sys

    # A module that fails to import stands in for a missing tfmot, installed here or not.
    (tmp_path / "tensorflow_model_optimization.py").write_text("raise ImportError('not installed')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "nce_tf.benchmarks.qat_compare", "--framework=tfmot", "--seed=3"],
                          capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: tfmot is not installed. Allowed: pip install -e .[tfmot]"]
    assert proc.stdout == ""


def test_a_bench_names_the_code_and_libraries_it_timed(tmp_path):
    import json
    import subprocess
    import sys

    from nce_tf import provenance

    proc = subprocess.run([sys.executable, "-m", "nce_tf", "bench", "qat", "--model=resnet8", "--batch_size=2",
                           "--steps=1", "--warmup_steps=1", "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["ratio"] == out["qat_step_s"] / out["float_step_s"]
    here = provenance.code_state(os.path.dirname(provenance.__file__))  # read now, as the child did
    assert (out["provenance"]["commit"], out["provenance"]["dirty"]) == (here["commit"], here["dirty"])
    assert out["provenance"]["versions"]["tensorflow"] == tf.__version__
