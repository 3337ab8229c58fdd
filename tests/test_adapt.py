"""nce_tf.adapt: a user's Keras CNN as an NCE search space, searched, derived, trained and exported.

The reference for the search space is the zoo's own (``build_space``), built by hand from the
paper's layouts; costs of derived models are checked against ``count_model``, which reads the
built Keras graph independently of the search space.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import nce_tf
from nce_tf import data, models
from nce_tf.cost import count_model
from nce_tf.errors import UsageError
from nce_tf.export import tflite_graph
from nce_tf.export.delegation import interpreter
from nce_tf.export.exporter import run_tflite
from nce_tf.jobs import run_training
from nce_tf.search import derive_widths
from nce_tf.search.callbacks import ChannelExpansion, TauSchedule
from nce_tf.sources import build_space
from nce_tf.train import TrainConfig

L = keras.layers


def mobile_net(input_shape=(16, 16, 3)):
    """Inverted residual blocks (expand 1x1 -> depthwise 3x3 -> project 1x1, identity adds)."""
    i = keras.Input(input_shape, name="image")
    x = L.Conv2D(16, 3, padding="same", use_bias=False, name="stem")(i)
    x = L.ReLU(6.0, name="stem_relu")(L.BatchNormalization(name="stem_bn")(x))
    for k, (c, s) in enumerate([(16, 1), (24, 2), (24, 1)]):
        y = L.Conv2D(2 * c, 1, use_bias=False, name=f"b{k}_expand")(x)
        y = L.ReLU(6.0, name=f"b{k}_expand_relu")(L.BatchNormalization(name=f"b{k}_expand_bn")(y))
        y = L.DepthwiseConv2D(3, strides=s, padding="same", use_bias=False, name=f"b{k}_dw")(y)
        y = L.ReLU(6.0, name=f"b{k}_dw_relu")(L.BatchNormalization(name=f"b{k}_dw_bn")(y))
        y = L.Conv2D(c, 1, use_bias=False, name=f"b{k}_project")(y)
        y = L.BatchNormalization(name=f"b{k}_project_bn")(y)
        if s == 1 and x.shape[-1] == c:
            y = L.Add(name=f"b{k}_add")([x, y])
        x = y
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dropout(0.1, name="drop")(L.Dense(32, activation="relu", name="fc1")(x))
    return keras.Model(i, L.Dense(10, activation="softmax", name="logits")(x), name="mobile")


def concat_net(input_shape=(16, 16, 3)):
    """Two branches concatenated (widths add up), a biased conv, Flatten into the classifier."""
    i = keras.Input(input_shape, name="image")
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="c0")(i)
    a = L.Conv2D(8, 1, activation="relu", name="a")(x)
    b = L.Conv2D(16, 3, padding="same", use_bias=False, name="b")(x)
    b = L.Activation("relu", name="b_relu")(L.BatchNormalization(name="b_bn")(b))
    x = L.MaxPooling2D(2, name="pool")(L.Concatenate(name="cat")([a, b]))
    x = L.Conv2D(16, 3, padding="same", activation="relu", name="c1")(x)
    x = L.Flatten(name="flat")(L.MaxPooling2D(2, name="pool2")(x))
    return keras.Model(i, L.Dense(10, name="logits")(x), name="concat")


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_a_zoo_space_is_the_adapted_zoo_network(name):
    """The one graph builder on every zoo model: rows are the zoo's width list, every conv is
    searched, shortcut convs are tied to their block's last conv, and the graph's exact cost
    of a width list is what counting the Keras network built at those widths gives."""
    from nce_tf.cost import count_arch
    from nce_tf.search.candidates import candidate_widths

    space = build_space(name)
    names, defaults = models.width_names(name), models.default_widths(name)
    assert [(r.name, r.n, r.candidates, r.frozen) for r in space.rows] == [
        (n, w, candidate_widths(w), False) for n, w in zip(names, defaults)]
    assert space.source is None and space.model == name  # derived by the zoo's builder
    row_of = {r.name: i for i, r in enumerate(space.rows)}
    for node in space.nodes:
        if node.op != "conv":
            continue
        if node.role == "shortcut":  # e.g. s2_b0_shortcut_conv follows s2_b0_b_conv (or _c_ in a bottleneck)
            block = node.name[:-len("_shortcut_conv")]
            last = max(r for n, r in row_of.items() if n.startswith(block + "_"))
            assert node.row == last, node.name
        else:
            assert space.rows[node.row].name == node.name
            assert (node.role == "first") == (node.row == 0), node.name
    rng = np.random.default_rng(0)
    for widths in (defaults, [int(rng.choice(r.candidates)) for r in space.rows]):
        counted = count_arch(name, widths)
        assert space.exact_cost(widths) == (counted.macs, counted.params), widths


def test_resnet50_keeps_its_first_projection_when_the_widths_match():
    # The 1X network projects 64 -> 256 in its first block, so every derived network has that conv,
    # even at widths where the identity would do (stem and s1_b0_c both 64): the search graph, the
    # adapter and the Keras model count it, 64 * 64 MACs per position at 56 x 56 and 64 * 64 weights + BN.
    from nce_tf.cost import count_arch

    widths = models.default_widths("resnet50")
    widths[3] = 64  # s1_b0_c_conv
    space = build_space("resnet50")
    macs, params = space.exact_cost(widths)
    built = count_arch("resnet50", widths)
    assert (built.macs, built.params) == (macs, params)
    model = models.build_model("resnet50", widths)
    assert model.get_layer("s1_b0_shortcut_conv").kernel.shape == (1, 1, 64, 64)


def test_adapting_the_zoo_resnet20_pins_the_first_conv_by_default():
    model = models.build_model("resnet20", policy=models.QuantPolicy(w_bits=2, a_bits=2))
    assert nce_tf.adapt(model, search_first=True).space.exact_cost(build_space("resnet20").default_widths()) == (
        40813184, 272474)
    pinned = nce_tf.adapt(model).space.rows[0]
    assert pinned.frozen and set(pinned.candidates) == {16}


def _search(net, x, y, epochs=3):
    net.configure_optimizers(keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
                             keras.optimizers.Adam(0.05, beta_1=0.5))
    net.set_arch_updates(True)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32, drop_remainder=True)
    net.fit(tf.data.Dataset.zip((ds, ds.skip(1).concatenate(ds.take(1)))), epochs=epochs, verbose=0,
            callbacks=[TauSchedule(total_epochs=epochs), ChannelExpansion(threshold=0.13)])


@pytest.fixture(scope="module")
def synthetic():
    source = data.get_source("synthetic", seed=0, synthetic_train_size=256, synthetic_test_size=128)
    tr = data.make_pipeline(source.train, source.info, training=False, batch_size=256)
    te = data.make_pipeline(source.test, source.info, training=False, batch_size=128)
    (x, y), (xt, yt) = next(iter(tr)), next(iter(te))
    # The adapted test models take 16 x 16 images: the synthetic task's stripes survive 2x pooling.
    pool = lambda t: tf.nn.avg_pool2d(t, 2, 2, "VALID").numpy()  # noqa: E731
    return pool(x), y.numpy(), pool(xt), yt.numpy()


@pytest.fixture(scope="module")
def colour_images(colour_task):
    """The colour task at the adapted models' 16 x 16, scaled to [-1, 1]: ``(train, test)`` arrays."""
    with np.load(colour_task.path) as f:
        arrays = [f[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    scale = lambda t: tf.nn.avg_pool2d(t.astype("float32") / 127.5 - 1.0, 2, 2, "VALID").numpy()  # noqa: E731
    return (scale(arrays[0]), arrays[1]), (scale(arrays[2]), arrays[3])


def _file_biases(flat, model):
    """``{layer name: bias}`` as the int8 file stores it: int32 at the scale ``s_in * s_w`` TFLite requires.

    With a 2-bit kernel on the int8 grid (``s_w`` the 2-bit step) reading a PACT tensor, that scale
    is coarse unless ``s_in`` is finer than a PACT level: at one level per int8 step it measured
    0.62 of the output step of the concat net's conv ``a`` (a conv with a bias and no BN); the
    export now reads PACT tensors at 1/85 of a level (``tflite_graph.Plan.pact``).
    """
    it = interpreter(flat, "builtin")
    details = {d["index"]: d for d in it.get_tensor_details()}
    tags = {tflite_graph.kernel_tag(layer): layer.name for layer in model.layers}
    biases = {}
    for op in it._get_ops_details():  # noqa: SLF001  LiteRT's only op listing
        if len(op["inputs"]) < 3 or op["inputs"][2] < 0:
            continue
        names = [tags[n] for n in details[op["inputs"][1]]["name"].split(";") if n in tags]
        if names:
            b = details[op["inputs"][2]]
            biases[names[0]] = it.get_tensor(b["index"]) * b["quantization_parameters"]["scales"]
    return biases


def _int8_graph(model, calibration, images, monkeypatch, biases=None):
    """The export's int8 graph (``tflite_graph.build_graph``: int8 fake quantization, float arithmetic)
    on ``images``, with ``biases`` (``{layer name: bias}``) in place of the model's where given."""
    biases = biases or {}
    folded = tflite_graph._folded  # noqa: SLF001  convs take their (BN-folded) bias from it

    def with_file_bias(conv, bn, *args):
        kernel, bias, bound = folded(conv, bn, *args)
        return kernel, biases.get(conv.name, bias).astype("float32"), bound

    kept = {}
    with monkeypatch.context() as m:
        m.setattr(tflite_graph, "_folded", with_file_bias)
        for layer in model.layers:  # dense layers read their bias variable when the graph is built
            if isinstance(layer, L.Dense) and layer.use_bias and layer.name in biases:
                kept[layer.name] = layer.bias.numpy()
                layer.bias.assign(biases[layer.name].astype("float32"))
        try:
            graph = tflite_graph.build_graph(model, tflite_graph.calibrate(model, calibration))
        finally:
            for name, bias in kept.items():
                model.get_layer(name).bias.assign(bias)
    return graph(tf.constant(images)).numpy()


@pytest.mark.heavy
@pytest.mark.parametrize("build", [pytest.param(mobile_net, marks=pytest.mark.slow), concat_net])  # mobile: 90 s
def test_adapted_model_searches_derives_trains_and_exports(build, synthetic, colour_images, colour_task, tmp_path,
                                                            monkeypatch):
    x, y, _, _ = synthetic
    # Seeded here, not by whichever test ran before in this process: the user model's initialisation and
    # the search's draws otherwise depend on the suite's order (a pytest-xdist worker's derived
    # mobile_net once learnt the colour task to 0.297, under the bound below; alone it passes).
    keras.utils.set_random_seed(0)
    user = build()
    net = nce_tf.adapt(user, w_bits=2, a_bits=2, seed=0)
    # The 1X space costs what the user's model costs, read off its Keras graph.
    user_cost = count_model(user)
    assert net.space.exact_cost(net.space.default_widths()) == (user_cost.macs, user_cost.params)
    _search(net, x, y)
    k = net.num_candidates.numpy()
    assert k[0] == 1 and (k[1:] > 8).all() and (k <= 16).all()  # expansion fired; the pinned stem did not grow
    widths = derive_widths(net)
    recorded = net.space.exact_cost(widths)
    derived = nce_tf.derive_model(net)
    cost = count_model(derived)
    assert (cost.macs, cost.params) == recorded  # the search's count is the derived network's
    rng = np.random.default_rng(1)
    for _ in range(3):  # and at arbitrary widths, projections included where an add's widths differ
        other = [int(rng.choice(row[:16])) for row in net.table_np]
        c = count_model(nce_tf.derive_model(net, other))
        assert (c.macs, c.params) == net.space.exact_cost(other)
    # Train it like any Keras model, then export it.  On the colour task (tests/conftest.py), which
    # twelve epochs learn: four epochs on the stripes task above left near-tied logits, whose top-1
    # an int8 rounding flips at random (concat's agreement then ranged 0.23-0.73 from run to run).
    (cx, cy), (cxt, cyt) = colour_images
    keras.utils.set_random_seed(0)
    derived.compile(keras.optimizers.SGD(0.05, momentum=0.9),
                    keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    derived.fit(cx, cy, batch_size=32, epochs=12, verbose=0)
    card = nce_tf.export.export_model(derived, str(tmp_path / "export"), cx[:64], cxt, cyt)
    assert sorted(os.listdir(tmp_path / "export")) == sorted(
        ["model.keras", "saved_model", "model_int8.tflite", "model_int4.tflite", "model_float.tflite",
         "weights_2bit.npz", "model_card.json"])
    parity = json.load(open(tmp_path / "export" / "model_card.json"))["parity"]
    assert parity == card["parity"] and parity["saved_model_max_diff"] == 0.0
    # Keras and the int8 file differ in two ways (measured below): the int8 rounding of the tensors Keras
    # keeps float (input, concat, classifier), and the file's int32 biases (see _file_biases), each
    # moving values near a PACT level boundary to the next level; where logits are close that flips the
    # top-1.  Measured over seven runs (the search is not bit-reproducible: oneDNN's depthwise backward
    # sums in varying order, and 2-bit levels amplify that): concat top-1 agreement 0.98-0.99 in six
    # (0.60 in the suite once); mobile 0.70-1.00, TFLite accuracy 0.51-0.80 (Keras 0.61-0.71).
    # The card's parity and accuracies, recomputed from the written int8 file run on the test images and
    # the Keras model's own outputs.
    with open(tmp_path / "export" / "model_int8.tflite", "rb") as f:
        flat = f.read()
    lite, _ = run_tflite(flat, cxt)
    keras_logits = derived.predict(cxt, verbose=0)
    agreement = float(np.mean(lite.argmax(1) == keras_logits.argmax(1)))
    assert parity["tflite_top1_agreement"] == agreement
    assert parity["tflite_max_logit_diff"] == pytest.approx(np.abs(lite - keras_logits).max(), rel=1e-4, abs=1e-5)
    assert card["tflite_test_accuracy"] == float(np.mean(lite.argmax(1) == cyt))
    assert card["keras_test_accuracy"] == float(np.mean(keras_logits.argmax(1) == cyt))
    # Where the two agree they are right or wrong together: the accuracies differ by at most the disagreements.
    assert abs(card["tflite_test_accuracy"] - card["keras_test_accuracy"]) <= 1 - agreement + 1e-9
    # Where the difference comes from, each step checked tightly.  (1) The int8 file computes the
    # export's int8 graph with the biases the file stores (int32 at s_in * s_w): within one output
    # step of it (measured 0.00-1.00; a file whose ranges, grids or scales differ from the graph the
    # exporter built misses this by many steps).  With the model's own biases instead, the graph
    # departs from the file where a bias's rounding moves a value across a PACT level: measured on
    # 0, 1 and 34 of 128 images in three runs after the finer PACT step (``Plan.pact``), 38 with it
    # undone; the finer step itself is checked in tests/test_export.py.  Not asserted here: what
    # the remaining rounding flips depends on the searched widths and ranges of each run.
    step = parity["int8_output_step"]
    exact_biases = _int8_graph(derived, cx[:64], cxt, monkeypatch)
    on_file_biases = _int8_graph(derived, cx[:64], cxt, monkeypatch, _file_biases(flat, derived))
    off = float(np.abs(lite - on_file_biases).max()) / step
    assert off <= 1 + 1e-4, f"the int8 file is {off:.2f} output steps off the export's int8 graph"
    # (2) The int8 graph is the Keras model up to the int8 rounding of its float tensors, which
    # moves an activation across a PACT level now and then: the logits' mean difference is a small
    # part of their spread. A 2-bit layer's grid bound without its BN scale (a broken fold) gave
    # agreement 0.83 on concat. Measured on concat: 0.008-0.012 of the spread (mobile 0.018); with
    # the broken fold 0.43.
    rel_error = float(np.abs(exact_biases - keras_logits).mean() / keras_logits.std())
    assert rel_error < 0.1, f"graph vs Keras: mean |logit difference| / logit std = {rel_error:.3f}"
    # Top-1 agreement counts near-ties, which that rounding flips: concat measured 0.96-1.00 in four
    # runs with the finer PACT step (0.30-0.99 before it, a suite run's concat file scoring 0.20);
    # the graph itself agreed 0.90-1.00 with Keras.  The bias rounding left in some structures (see
    # (1)) can still flip near-ties, so concat's bound sits under the 0.30 measured before the fix:
    # it must catch the ~0.1 of an export that lost its grids, not near-tie flips.  Keras's accuracy
    # must show the colour task was learnt (the file's is held to it above, within 1 - agreement).
    assert agreement >= {concat_net: 0.25, mobile_net: 0.6}[build], (agreement, parity)
    assert card["keras_test_accuracy"] >= colour_task.above_chance, card["keras_test_accuracy"]
    packed = nce_tf.export.read_packed(str(tmp_path / "export" / "weights_2bit.npz"))
    for name, grid in packed.items():  # every 2-bit layer, depthwise included, on its 4 levels
        np.testing.assert_allclose(grid.values(), derived.get_layer(name).quantized_kernel().numpy(),
                                   rtol=1e-6, atol=1e-7)  # ints * step vs the quantizer's own product
        assert len(np.unique(grid.ints)) <= 4
    if build is mobile_net:
        assert any(name.endswith("_dw") for name in packed)
    # Every 2-bit filter, depthwise included, is int4 in model_int4.tflite, with the int8 file's outputs.
    assert card["int4"]["int4_layers"] == list(packed) and card["int4"]["vs_int8"]["builtin"]["max_logit_diff"] == 0.0


@pytest.mark.heavy
def test_derived_model_trains_with_the_trainer(tmp_path):
    net = nce_tf.adapt(mobile_net((32, 32, 3)), seed=0)
    cfg = TrainConfig(workdir=str(tmp_path / "train"), dataset="synthetic", synthetic_train_size=128,
                      synthetic_test_size=64, epochs=1, warmup_epochs=0, batch_size=32, w_bits=2, a_bits=2)
    metrics = run_training(cfg, model_fn=lambda **kw: nce_tf.derive_model(
        net, policy=kw["policy"], weight_decay=kw["weight_decay"]))
    assert metrics["macs"] == net.space.exact_cost(derive_widths(net))[0]
    # tools/export.py's job on that work directory: the saved model reloads in safe mode and exports.
    card = nce_tf.export.run_export(str(tmp_path / "train"), parity_samples=64, calibration_samples=64,
                                    verbose=False)
    assert card["widths"] == metrics["widths"] and os.path.exists(tmp_path / "train" / "export" / "model_int8.tflite")
    # config.json records the custom model's layers: the same model finds its finished run, another
    # one (other widths) is refused before anything in the work directory changes.
    assert run_training(cfg, model_fn=lambda **kw: nce_tf.derive_model(
        net, policy=kw["policy"], weight_decay=kw["weight_decay"])) == metrics
    other = [int(w) for w in net.table_np[:, 0]]  # every row at its narrowest candidate
    before = open(tmp_path / "train" / "config.json").read()
    with pytest.raises(UsageError, match=r"other settings \(layers="):
        run_training(cfg, model_fn=lambda **kw: nce_tf.derive_model(
            net, other, policy=kw["policy"], weight_decay=kw["weight_decay"]))
    assert open(tmp_path / "train" / "config.json").read() == before


def test_inherited_weights_give_the_supernet_forward_at_the_argmax():
    net = nce_tf.adapt(mobile_net(), w_bits=32, a_bits=32, seed=1)
    x = np.random.default_rng(0).normal(size=(8, 16, 16, 3)).astype("float32")
    _search(net, x, np.arange(8) % 10, epochs=1)
    # (8 images make no batch of 32: the step above moves nothing.) Every candidate's BN its own values,
    # so a layer that takes another candidate's BN shows in the outputs.
    rng = np.random.default_rng(7)
    for layer in net.layers:
        if getattr(layer, "gamma", None) is not None and len(layer.gamma.shape) == 2:
            for name, lo, hi in (("gamma", 0.5, 1.5), ("beta", -0.3, 0.3), ("moving_mean", -0.3, 0.3),
                                 ("moving_variance", 0.5, 2.0)):
                variable = getattr(layer, name)
                variable.assign(rng.uniform(lo, hi, variable.shape).astype("float32"))
    # An argmax away from 1X, with the add's two rows at one width: the derived net then needs no
    # projection (a fresh one would have no counterpart in the super-net, which adds into the
    # leading channels instead).
    names = [r.name for r in net.space.rows]
    picks = np.random.default_rng(3).integers(2, 8, size=len(names))
    picks[names.index("b2_project")] = picks[names.index("b1_project")]
    picks[names.index("b0_project")] = 7  # 1X: the width of the pinned stem it adds to
    alpha = np.full(net.alpha.shape, -5.0, "float32")
    alpha[np.arange(len(names)), np.minimum(picks, net.num_candidates.numpy() - 1)] = 5.0
    net.alpha.assign(alpha)
    idx = np.argmax(net.masked_alpha().numpy(), -1).astype("int32")
    widths = net.table_np[np.arange(len(idx)), idx]
    pair = lambda v: tf.constant(np.stack([v, v], 1))  # noqa: E731  both candidates = the argmax
    sample = (pair(widths), pair(idx), tf.constant(np.full((len(idx), 2), 0.5, "float32")))
    expected, _ = net.forward(tf.constant(x), sample, training=False)
    derived = nce_tf.derive_model(net, inherit=True)
    np.testing.assert_allclose(derived(x, training=False).numpy(), expected.numpy(), atol=1e-4, rtol=1e-4)
    # The same widths given by hand with alpha's argmax elsewhere (as after a budget repair): each layer
    # takes the BN of the candidate of its width, not the argmax's (it took the argmax's)
    shifted = np.full(net.alpha.shape, -5.0, "float32")
    shifted[:, 0] = 5.0
    net.alpha.assign(shifted)
    derived = nce_tf.derive_model(net, [int(w) for w in widths], inherit=True)
    np.testing.assert_allclose(derived(x, training=False).numpy(), expected.numpy(), atol=1e-4, rtol=1e-4)


def test_the_derived_layers_keep_the_users_keras_arguments():
    # Every argument the derived conv, depthwise conv and dense take from the user's layer
    # (keras_args.*_KEYS) set away from its default; the kernel regularizer is the user's unless the
    # run sets a weight decay; an activity regularizer stays on the tensor Keras applies it to: the
    # layer's output, or its activation's where it has one (then a layer of its own after it).
    R, C = keras.regularizers, keras.constraints
    common = dict(use_bias=True, bias_initializer="ones", bias_regularizer=R.L1(1e-4), bias_constraint=C.NonNeg(),
                  activity_regularizer=R.L2(1e-5))
    i = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, strides=2, padding="valid", kernel_initializer="he_uniform", kernel_regularizer=R.L2(1e-3),
                 kernel_constraint=C.MaxNorm(2.0), activation="relu", name="conv", **common)(i)
    x = L.DepthwiseConv2D(3, padding="same", depthwise_initializer="he_uniform",
                          depthwise_constraint=C.MaxNorm(3.0), name="dw", **common)(x)
    x = L.Dense(6, kernel_initializer="he_uniform", kernel_regularizer=R.L2(1e-3), kernel_constraint=C.MaxNorm(2.0),
                activation="tanh", name="fc", **common)(L.GlobalAveragePooling2D()(L.ReLU()(x)))
    user = keras.Model(i, L.Dense(10, activation="softmax", activity_regularizer=R.L1(1e-3), name="logits")(x))
    derived = nce_tf.derive_model(nce_tf.adapt(user, seed=0))
    for name in ("conv", "dw", "fc"):
        want, got = user.get_layer(name).get_config(), derived.get_layer(name).get_config()
        for key in set(want) - {"name", "filters", "units", "activation", "dtype", "trainable", "activity_regularizer"}:
            assert got[key] == want[key], (name, key)
    on = {name: R.serialize(derived.get_layer(name).activity_regularizer)
          if derived.get_layer(name).activity_regularizer else None
          for name in ("conv", "conv_act", "dw", "fc", "fc_tanh", "logits")}
    assert on == {"conv": None, "conv_act": R.serialize(R.L2(1e-5)), "dw": R.serialize(R.L2(1e-5)), "fc": None,
                  "fc_tanh": R.serialize(R.L2(1e-5)), "logits": None}  # the logits: the softmax is dropped
    reg = nce_tf.derive_model(nce_tf.adapt(user, seed=0), weight_decay=1e-4).get_layer("conv").kernel_regularizer
    assert reg.get_config() == {"l2": 5e-5}  # coupled L2 of 1e-4 / 2


def test_frozen_layers_keep_their_width():
    net = nce_tf.adapt(mobile_net(), frozen=["b1_expand"])
    row = [r.name for r in net.space.rows].index("b1_expand")
    assert net.space.rows[row].frozen and net.num_candidates.numpy()[row] == 1
    assert set(net.table_np[row]) == {48}
    with pytest.raises(UsageError, match=r"without a searchable width .* Received: frozen=\['b1_expand_bn'\]"):
        nce_tf.adapt(mobile_net(), frozen=["b1_expand_bn"])
    with pytest.raises(UsageError, match=r"frozen=\['nope'\]"):
        nce_tf.adapt(mobile_net(), frozen=["nope"])


@keras.saving.register_keras_serializable(package="tests")
class Mystery(L.Layer):
    def call(self, x):
        return x * 2.0


# settings of a conv the search does not widen (shape-only: a channels-first conv is built, never run)
CONV_SETTINGS = {
    "grouped": lambda x: L.Conv2D(8, 3, groups=2, name="grouped")(x),
    "depth multiplier": lambda x: L.DepthwiseConv2D(3, depth_multiplier=2, name="dm")(x),
    "channels first": lambda x: L.Conv2D(8, 3, data_format="channels_first", name="cf")(x),
    "dilated": lambda x: L.Conv2D(8, 3, dilation_rate=2, name="dilated")(x),
}


def _unsupported(case):
    i = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", name="conv")(i)
    if case == "subclassed":
        x = Mystery(name="mystery")(x)
    elif case == "reshape":
        x = L.Reshape((8, 16, 4), name="regroup")(x)
    elif case == "shared":
        shared = L.Conv2D(8, 3, padding="same", name="twice")
        x = shared(shared(x))
    elif case == "dense_on_maps":
        return keras.Model(i, L.Dense(10, name="head")(x))
    elif case in CONV_SETTINGS:
        x = CONV_SETTINGS[case](x)
    return keras.Model(i, L.Dense(10, name="head")(L.GlobalAveragePooling2D()(x)))


def test_an_input_of_unknown_size_is_refused():
    i = keras.Input((None, None, 3))
    model = keras.Model(i, L.Dense(10)(L.GlobalAveragePooling2D()(L.Conv2D(8, 3)(i))))
    with pytest.raises(UsageError, match=r"known size .* Received: input shape \(None, None, 3\)"):
        nce_tf.adapt(model)


@pytest.mark.parametrize("case, needle", [
    ("subclassed", "layer 'mystery' (Mystery): unknown layer type"),
    ("reshape", "layer 'regroup' (Reshape): its target shape depends on the channel count"),
    ("shared", "Layer 'twice' is used at 2 places"),
    ("dense_on_maps", "layer 'head' (Dense): a Dense layer must read a flat vector"),
    ("grouped", "layer 'grouped' (Conv2D): received groups=2, allowed: 1"),
    ("depth multiplier", "layer 'dm' (DepthwiseConv2D): received depth_multiplier=2, allowed: 1"),
    ("channels first", "layer 'cf' (Conv2D): received data_format='channels_first', allowed: 'channels_last'"),
    ("dilated", "layer 'dilated' (Conv2D): dilated convolutions are not supported, received dilation_rate=(2, 2)"),
])
def test_what_cannot_be_adapted_is_a_one_line_error_naming_the_layer(case, needle):
    with pytest.raises(UsageError) as info:
        nce_tf.adapt(_unsupported(case))
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_derive_model_refuses_a_zoo_supernet():
    from nce_tf.search import SuperNet

    with pytest.raises(UsageError, match="adapt"):
        nce_tf.derive_model(SuperNet(build_space("resnet8")))


def test_a_sequential_model_adapts_like_its_functional_twin():
    layers = lambda: [L.Conv2D(8, 3, padding="same", use_bias=False), L.BatchNormalization(), L.ReLU(),  # noqa: E731
                      L.MaxPooling2D(2), L.Conv2D(16, 3, padding="same", activation="relu"), L.Flatten(),
                      L.Dense(24, activation="relu"), L.Dense(10)]
    seq = keras.Sequential([keras.Input((8, 8, 3)), *layers()])
    net = nce_tf.adapt(seq, search_first=True)
    assert [r.n for r in net.space.rows] == [8, 16, 24]
    user = count_model(seq)
    assert net.space.exact_cost(net.space.default_widths()) == (user.macs, user.params)
    widths = [6, 20, 12]
    derived = nce_tf.derive_model(net, widths)
    assert (count_model(derived).macs, count_model(derived).params) == net.space.exact_cost(widths)
    assert derived(np.zeros((2, 8, 8, 3), "float32")).shape == (2, 10)


def _three_way_add():
    i = keras.Input((8, 8, 3))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(8, 3, padding="same", use_bias=False)(i)))
    a = L.BatchNormalization()(L.Conv2D(8, 3, padding="same", use_bias=False)(x))
    b = L.BatchNormalization()(L.Conv2D(8, 1, use_bias=False)(x))
    y = L.ReLU()(L.Add()([a, x, b]))  # two fresh convs (tied) and the identity
    return keras.Model(i, L.Dense(10)(L.GlobalMaxPooling2D()(y)))


def _nested_concat():
    i = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu")(i)
    a, b, c = (L.Conv2D(w, 1, activation="relu")(x) for w in (4, 8, 12))
    y = L.Concatenate()([L.Concatenate()([a, b]), c])
    y = L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same")(y)))  # depthwise over a concat
    y = L.AveragePooling2D(2, padding="same")(L.Conv2D(16, 1, activation="swish")(y))
    return keras.Model(i, L.Dense(10)(L.Flatten()(y)))


@pytest.mark.parametrize("build", [_three_way_add, _nested_concat, mobile_net, concat_net])
def test_exact_cost_of_any_width_list_is_the_derived_models_count(build):
    net = nce_tf.adapt(build(), search_first=True)
    rng = np.random.default_rng(0)
    for _ in range(4):
        widths = [int(rng.choice(row)) for row in net.table_np]
        derived = nce_tf.derive_model(net, widths)
        cost = count_model(derived)
        assert (cost.macs, cost.params) == net.space.exact_cost(widths)
        one_hot = (net.table_np == np.array(widths)[:, None]).astype("float64")
        one_hot /= one_hot.sum(1, keepdims=True)  # equal candidates (pinned rows) share the mass
        expected = [float(v) for v in net.cost_model.expected(one_hot)]
        np.testing.assert_allclose(expected, [cost.macs, cost.params], rtol=1e-12)
        # The super-net runs at these widths too (every node's width rule holds in the forward).
        assert net(np.zeros((2, 8, 8, 3) if build not in (mobile_net, concat_net) else (2, 16, 16, 3),
                            "float32")).shape == (2, 10)


def test_a_conv_without_bn_or_bias_has_no_bias_in_the_super_net():
    """The super-net gave such a conv a bias (trained, then dropped by the derived layer, which has none):
    the derived network then computed other than the super-net at its widths."""
    i = keras.Input((8, 8, 3))
    x = L.ReLU(name="r")(L.Conv2D(8, 3, padding="same", use_bias=False, name="plain")(i))
    x = L.ReLU(name="r2")(L.Conv2D(8, 3, padding="same", use_bias=True, name="biased")(x))
    net = nce_tf.adapt(keras.Model(i, L.Dense(4, name="fc")(L.GlobalAveragePooling2D()(x))), w_bits=32, a_bits=32,
                       search_first=True)
    layers = {node.name: net.layer_of_node(k) for k, node in enumerate(net.space.nodes)}
    assert layers["plain"].bias is None and layers["biased"].bias is not None
    layers["biased"].bias.assign(np.linspace(-1, 1, layers["biased"].bias.shape[0]).astype("float32"))
    widths = net.space.default_widths()
    derived = nce_tf.derive_model(net, widths, inherit=True)
    assert not derived.get_layer("plain").use_bias and derived.get_layer("biased").use_bias
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    expected, _ = net.forward(tf.constant(x), net.subnet_sample(widths), training=False)
    np.testing.assert_allclose(derived(x, training=False).numpy(), expected.numpy(), atol=1e-5)
