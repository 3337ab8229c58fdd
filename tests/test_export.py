"""Tests of the deployment export: packed weights, the int8 TFLite's grids, the int4 file, parity, the tool's errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import keras
import tensorflow as tf

from nce_tf import data, models, provenance
from nce_tf.export.exporter import load_model, run_export, run_tflite
from nce_tf.export.grid import integer_grid
from nce_tf.export.int4 import pack_int4, read_model, to_int4, unpack_int4
from nce_tf.export.packed import pack_codes, quantized_layers, read_packed, unpack_codes

pytestmark = pytest.mark.heavy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A W2A2 ResNet-8 trained a few epochs on the synthetic task, then exported."""
    workdir = str(tmp_path_factory.mktemp("export_run"))
    keras.utils.set_random_seed(0)
    source = data.get_source("synthetic", seed=0, synthetic_train_size=1024, synthetic_test_size=256)
    train = data.make_pipeline(source.train, source.info, training=True, batch_size=64, seed=0).repeat()
    model = models.build_model("resnet8", policy=models.QuantPolicy(w_bits=2, a_bits=2), weight_decay=5e-4)
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(train, epochs=4, steps_per_epoch=16, verbose=0)
    model.save(os.path.join(workdir, "model.keras"))
    config = {"dataset": "synthetic", "seed": 0, "synthetic_train_size": 1024, "synthetic_test_size": 256,
              "resolved_model": "resnet8", "widths": models.default_widths("resnet8"), "w_bits": 2, "a_bits": 2,
              "weight_quantizer": "sawb"}
    with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f)  # what tools/train.py writes, the fields the exporter reads
    with open(os.path.join(workdir, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump({"provenance": provenance.record()}, f)  # the training's provenance, for the card
    card = run_export(workdir, parity_samples=256, calibration_samples=128, verbose=False)
    return workdir, card


def test_pack_codes_layout():
    packed = pack_codes(np.array([0, 1, 2, 3, 3, 2], "uint8"), 2)
    assert packed.tolist() == [0b11100100, 0b00001011]  # code i in bits 2(i mod 4).. of byte i // 4
    codes = np.random.default_rng(0).integers(0, 8, 1001).astype("uint8")
    assert (unpack_codes(pack_codes(codes, 3), 3, 1001) == codes).all()


def test_export_writes_every_file_and_records_parity(exported):
    workdir, card = exported
    out = os.path.join(workdir, "export")
    for name in ("model.keras", "saved_model", "model_int8.tflite", "model_int4.tflite", "model_float.tflite",
                 "weights_2bit.npz", "model_card.json"):
        assert os.path.exists(os.path.join(out, name)), name
    assert not os.path.exists(os.path.join(workdir, "export.tmp"))
    with open(os.path.join(out, "model_card.json"), encoding="utf-8") as f:
        assert json.load(f) == json.loads(json.dumps(card))
    p = card["parity"]
    assert p["saved_model_max_diff"] == 0.0 and p["keras_reload_max_diff"] == 0.0
    assert card["files"]["model_int8.tflite"] < card["files"]["model_float.tflite"] / 2.5
    assert card["weight_memory_bytes"] < card["float32_weight_memory_bytes"]
    # Measured, not the 99% / one-output-step target: float first conv, shortcuts and classifier
    # go to int8 the ordinary way, and their rounding moves some values across a PACT level.
    assert p["tflite_top1_agreement"] >= 0.85
    assert abs(card["tflite_test_accuracy"] - card["keras_test_accuracy"]) <= 0.05
    # The export's own provenance (this checkout's code, the export's time), and the training's as
    # the work directory's metrics.json records it.
    assert card["provenance"]["versions"]["tensorflow"] == tf.__version__
    assert card["provenance"]["commit"] == provenance.code_state()["commit"]
    assert card["provenance"]["times"]["phases"]["export"]["wall_seconds"] > 0
    with open(os.path.join(workdir, "metrics.json"), encoding="utf-8") as f:
        assert card["training_provenance"] == json.load(f)["provenance"]


def test_saved_model_and_float_tflite_compute_the_keras_model(exported):
    # Read back here, not through the card: the SavedModel's serve signature and the float TFLite file
    # against the Keras model on images the export never saw.
    from ai_edge_litert.interpreter import Interpreter

    workdir, _ = exported
    out = os.path.join(workdir, "export")
    model = load_model(os.path.join(workdir, "model.keras"))
    images = np.random.default_rng(5).normal(size=(8, 32, 32, 3)).astype("float32")
    expected = np.asarray(model(images, training=False))
    loaded = tf.saved_model.load(os.path.join(out, "saved_model"))  # held: serve's variables live on it
    served = loaded.serve(tf.constant(images)).numpy()
    np.testing.assert_array_equal(served, expected)
    with open(os.path.join(out, "model_float.tflite"), "rb") as f:
        it = Interpreter(model_content=f.read())
    inp, outp = it.get_input_details()[0], it.get_output_details()[0]
    assert inp["dtype"] == np.float32 and outp["dtype"] == np.float32
    it.resize_tensor_input(inp["index"], images.shape)
    it.allocate_tensors()
    it.set_tensor(inp["index"], images)
    it.invoke()
    lite = it.get_tensor(outp["index"])
    # Float kernels in another order of summation (BN folded): a PACT input within float error of a
    # level boundary may round to the other level, so the bound is on the median (measured 3.6e-7,
    # the largest 1.2e-6, logits up to 2.0), and every top-1 agrees.  Converted from the Keras model
    # instead (from_keras_model: its 2-bit fake-quants become QUANTIZE / DEQUANTIZE), the median was 0.57.
    assert np.median(np.abs(lite - expected)) < 1e-5 and (lite.argmax(1) == expected.argmax(1)).all()


def test_packed_file_reproduces_the_quantized_weights(exported):
    workdir, _ = exported
    model = load_model(os.path.join(workdir, "model.keras"))
    packed = read_packed(os.path.join(workdir, "export", "weights_2bit.npz"))
    layers = quantized_layers(model)
    assert sorted(packed) == sorted(layer.name for layer in layers) and len(layers) == 6  # resnet8: two convs in each of 3 blocks
    for layer in layers:
        g = packed[layer.name]
        assert np.array_equal(g.ints, integer_grid(layer).ints)
        assert set(np.unique(g.ints)) <= {-3, -1, 1, 3}
        np.testing.assert_allclose(g.values(), layer.quantized_kernel().numpy(), rtol=1e-6, atol=0)
    with np.load(os.path.join(workdir, "export", "weights_2bit.npz"), allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        for entry in meta["layers"]:  # 4 weights a byte
            assert z[f"codes_{entry['index']}"].size == -(-entry["count"] // 4)
    assert meta["model"] == "resnet8" and meta["widths"] == models.default_widths("resnet8")


def test_int8_tflite_keeps_the_2bit_grids(exported):
    from ai_edge_litert.interpreter import Interpreter

    workdir, _ = exported
    with open(os.path.join(workdir, "export", "model_int8.tflite"), "rb") as f:
        flat = f.read()
    it = Interpreter(model_content=flat, experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    image = np.random.default_rng(0).normal(size=(1, 32, 32, 3)).astype("float32")
    it.set_tensor(it.get_input_details()[0]["index"], image)
    it.invoke()
    kernels, pact = [], []
    for d in it.get_tensor_details():
        if d["dtype"] != np.int8 or len(d["shape"]) != 4:
            continue
        values = np.unique(it.get_tensor(d["index"]))
        if "kernel_of_" in d["name"]:  # every conv's filter carries its layer's name (tflite_graph.kernel_tag)
            kernels.append(len(values))
        elif d["name"].startswith("Minimum") and "/" not in d["name"]:
            pact.append(len(values))
    assert sum(n <= 4 for n in kernels) == 6  # the six 2-bit convs: their int8 kernels hold 4 values
    assert len(kernels) > 6 and max(kernels) > 4  # the float convs (stem, shortcuts) use the int8 range
    assert pact and max(pact) <= 4  # every PACT output takes only its 4 levels
    # ... restated for its readers on a step 85 times finer (a requantizing RELU: tflite_graph.Plan.pact),
    # so a conv reading it stores its int32 bias at s_in * s_w on a grid 85 times finer, the same levels.
    details = {d["index"]: d for d in it.get_tensor_details()}
    restated = []
    for op in it._get_ops_details():  # noqa: SLF001  LiteRT's only op listing
        if op["op_name"] == "RELU":
            src, dst = details[op["inputs"][0]], details[op["outputs"][0]]
            restated.append(src["quantization"][0] / dst["quantization"][0])
            assert len(np.unique(it.get_tensor(dst["index"]))) <= 4
    assert len(restated) == len(pact) and np.allclose(restated, 85.0, rtol=1e-5), restated
    ops = {d["op_name"] for d in it._get_ops_details()}  # noqa: SLF001  no public op listing
    assert "ADD_N" not in ops and "AVERAGE_POOL_2D" not in ops
    outputs, _ = run_tflite(flat, image)
    assert outputs.shape == (1, 10)


def _tool(args):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, os.path.join("tools", "export.py"), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180)


def _one_line_error(proc, needle):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr


def test_export_tool_bad_inputs(tmp_path, exported):
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_error(_tool([f"--workdir={empty}"]), "No trained model")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "model.keras").write_bytes(b"not a zip file")
    (corrupt / "config.json").write_text("{}")
    _one_line_error(_tool([f"--workdir={corrupt}"]), "Cannot load the model file")
    assert sorted(os.listdir(corrupt)) == ["config.json", "model.keras"]  # nothing half-written
    workdir, _ = exported
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    for name in ("model.keras", "config.json"):
        (blocked / name).write_bytes(open(os.path.join(workdir, name), "rb").read())
    (blocked / "export").write_text("a file where the export directory goes")
    _one_line_error(_tool([f"--workdir={blocked}"]), "not writable")
    assert sorted(os.listdir(blocked)) == ["config.json", "export", "model.keras"]


def test_int8_io_flag_gives_int8_tensors_and_the_same_predictions(exported):
    from ai_edge_litert.interpreter import Interpreter

    from nce_tf.export.tflite_graph import convert

    workdir, _ = exported
    model = load_model(os.path.join(workdir, "model.keras"))
    source = data.get_source("synthetic", seed=0, synthetic_train_size=1024, synthetic_test_size=256)
    images = next(iter(data.make_pipeline(source.test, source.info, training=False, batch_size=64)))[0].numpy()
    flat_int8, _ = convert(model, images, int8_io=True)
    flat_float, _ = convert(model, images, int8_io=False)
    it = Interpreter(model_content=flat_int8)
    assert it.get_input_details()[0]["dtype"] == np.int8 and it.get_output_details()[0]["dtype"] == np.int8
    out_int8, step = run_tflite(flat_int8, images)
    out_float, _ = run_tflite(flat_float, images)
    # The same integer graph; int8 I/O only adds the input's and the output's rounding.
    assert (out_int8.argmax(1) == out_float.argmax(1)).mean() >= 0.95
    assert np.abs(out_int8 - out_float).max() <= 4 * step


def test_int4_packing_is_low_nibble_first():
    assert pack_int4(np.array([1, -1, 7, -8, 3], "int8")).tolist() == [0xF1, 0x87, 0x03]  # odd count: high nibble 0
    values = np.random.default_rng(0).integers(-8, 8, 1001).astype("int8")
    assert np.array_equal(unpack_int4(pack_int4(values), 1001), values)


def _tensors(model):
    graph = model.subgraphs[0]
    return [(t.name, t.type, list(t.shape), t.quantization, model.buffers[t.buffer].data) for t in graph.tensors]


def _same_quantization(a, b):
    if a is None or b is None:
        return a is b
    return all(np.array_equal(np.asarray(getattr(a, k)), np.asarray(getattr(b, k)))
               for k in ("scale", "zeroPoint", "min", "max", "quantizedDimension"))


def test_int4_file_is_the_int8_file_with_its_2bit_filters_packed(exported):
    from ai_edge_litert import schema_py_generated as schema

    workdir, card = exported
    out = os.path.join(workdir, "export")
    with open(os.path.join(out, "model_int8.tflite"), "rb") as f:
        int8 = read_model(f.read())
    with open(os.path.join(out, "model_int4.tflite"), "rb") as f:
        int4 = read_model(f.read())
    model = load_model(os.path.join(workdir, "model.keras"))
    quantized = [layer.name for layer in quantized_layers(model)]
    assert card["int4"]["int4_layers"] == quantized and card["int4"]["int8_layers"] == []
    packed = 0
    for (name, type8, shape, q8, data8), (name4, type4, shape4, q4, data4) in zip(_tensors(int8), _tensors(int4),
                                                                                strict=True):
        assert (name, shape) == (name4, shape4) and _same_quantization(q8, q4)
        if type4 == schema.TensorType.INT4:  # a 2-bit layer's filter, by its layer's name and its values
            packed += 1
            assert type8 == schema.TensorType.INT8
            assert any(f"kernel_of_{n}" in name.decode().split(";") for n in quantized)
            ints = np.asarray(data8, "uint8").view("int8")
            assert set(np.unique(ints)) <= {-3, -1, 1, 3}
            assert len(data4) == -(-len(data8) // 2) and np.array_equal(unpack_int4(data4, ints.size), ints)
        else:
            assert type4 == type8 and np.array_equal(np.asarray(data8), np.asarray(data4)), name
    assert packed == len(quantized) == 6
    codes8, codes4 = int8.operatorCodes, int4.operatorCodes
    assert [(c.builtinCode, c.version) for c in codes4[:len(codes8)]] == [(c.builtinCode, c.version) for c in codes8]
    assert [(c.builtinCode, c.version) for c in codes4[len(codes8):]] == [(schema.BuiltinOperator.CONV_2D, 7)]
    for op8, op4 in zip(int8.subgraphs[0].operators, int4.subgraphs[0].operators, strict=True):
        assert list(op8.inputs) == list(op4.inputs) and list(op8.outputs) == list(op4.outputs)
        int4_filter = len(op4.inputs) > 1 and int4.subgraphs[0].tensors[op4.inputs[1]].type == schema.TensorType.INT4
        assert op4.opcodeIndex == (len(codes8) if int4_filter else op8.opcodeIndex)
    runtime = {m.name: bytes(np.asarray(int4.buffers[m.buffer].data, "uint8")).rstrip(b"\0") for m in int4.metadata}
    assert runtime[b"min_runtime_version"] == b"2.11.0"


def test_int4_file_gives_the_int8_files_outputs(exported):
    workdir, card = exported
    out = os.path.join(workdir, "export")
    flat8, flat4 = (open(os.path.join(out, f"model_{k}.tflite"), "rb").read() for k in ("int8", "int4"))
    images = np.random.default_rng(1).normal(size=(32, 32, 32, 3)).astype("float32")
    # The builtin kernels unpack the int4 filter to the int8 file's values: the same arithmetic, bit for bit.
    np.testing.assert_array_equal(run_tflite(flat4, images, "builtin")[0], run_tflite(flat8, images, "builtin")[0])
    vs = card["int4"]["vs_int8"]
    assert vs["builtin"]["top1_agreement"] == 1.0 and vs["builtin"]["max_logit_diff"] == 0.0
    assert card["files"]["model_int4.tflite"] < card["files"]["model_int8.tflite"]
    assert card["int4"]["filter_bytes"]["int4"] * 2 == card["int4"]["filter_bytes"]["int8"]
    # Each int4 conv is counted once per kernel set (measured with ai-edge-litert 2.3.0: XNNPACK leaves all
    # six to the builtin kernels; a later XNNPACK may take them).
    runs = card["int4"]["filter_ops_run_by"]
    assert runs["builtin"] == {"CONV_2D": {"delegated": 0, "kernels": 6}}
    assert sum(runs["xnnpack"]["CONV_2D"].values()) == 6


def test_delegation_reads_which_ops_xnnpack_took(exported):
    from nce_tf.export.delegation import filter_ops_by_runner, interpreter

    workdir, _ = exported
    with open(os.path.join(workdir, "export", "model_int8.tflite"), "rb") as f:
        flat8 = f.read()
    graph = read_model(flat8).subgraphs[0]
    filters = {op.inputs[1] for op in graph.operators if len(op.inputs) > 1 and op.inputs[1] >= 0}
    int8_convs = filter_ops_by_runner(interpreter(flat8, "xnnpack"), filters)["CONV_2D"]
    assert int8_convs["delegated"] > 0  # XNNPACK takes int8 convs: the walk finds them inside DELEGATE nodes
    assert filter_ops_by_runner(interpreter(flat8, "builtin"), filters)["CONV_2D"]["delegated"] == 0


def _depthwise_net():
    """Every op with an int4 kernel (depthwise, 1x1 conv, hidden dense) and a 4-bit conv int4 cannot hold."""
    from nce_tf import quant
    from nce_tf.layers import QuantActivation, QuantConv2D, QuantDense, QuantDepthwiseConv2D

    L = keras.layers
    keras.utils.set_random_seed(0)
    i = keras.Input((8, 8, 3))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(8, 3, padding="same", use_bias=False)(i)))
    x = L.BatchNormalization()(QuantDepthwiseConv2D(3, padding="same", use_bias=False, kernel_quantizer="sawb",
                                                    name="dw")(x))
    x = QuantActivation("pact")(x)
    x = QuantActivation("pact")(L.BatchNormalization()(QuantConv2D(8, 1, use_bias=False, kernel_quantizer="sawb",
                                                                   name="pw")(x)))
    x = QuantActivation("pact")(L.BatchNormalization()(QuantConv2D(
        8, 3, padding="same", use_bias=False, kernel_quantizer=quant.SAWB(bits=4), name="four_bit")(x)))
    x = QuantActivation("pact")(QuantDense(12, kernel_quantizer="sawb", name="hidden")(L.GlobalAveragePooling2D()(x)))
    return keras.Model(i, L.Dense(10)(x))


def test_a_per_channel_depthwise_grid_keeps_each_filters_own_step_in_the_int8_file():
    # Filters of spreads 1 to 512 on a 4-bit per-channel grid, each BN-normalised to unit scale: an
    # int8 range shared by the filters (or read off the largest step) would round the narrow ones
    # to a level or two, several output steps off; on each filter's own step the file computes Keras's.
    from nce_tf.export.tflite_graph import convert
    from nce_tf.layers import QuantDepthwiseConv2D
    from nce_tf.quant import Uniform

    i = keras.Input((6, 6, 4))
    dw = QuantDepthwiseConv2D(3, padding="same", use_bias=False, kernel_quantizer=Uniform(bits=4), name="dw")
    bn = keras.layers.BatchNormalization(name="bn")
    model = keras.Model(i, bn(dw(i)))
    rng = np.random.default_rng(0)
    images = rng.normal(size=(32, 6, 6, 4)).astype("float32")
    dw.kernel.assign((rng.normal(size=(3, 3, 4, 1)) * [[[[1.0], [8.0], [64.0], [512.0]]]]).astype("float32"))
    y = dw(images).numpy()
    bn.moving_mean.assign(y.mean(axis=(0, 1, 2)))
    bn.moving_variance.assign(y.var(axis=(0, 1, 2)))
    assert integer_grid(dw).step.shape == (4, 1)

    flat, _ = convert(model, images)
    want = model(images).numpy()
    got = run_tflite(flat, images, "builtin")[0]
    step = (want.max() - min(want.min(), 0)) / 255
    assert np.abs(got - want).max() <= 2 * step, np.abs(got - want).max(axis=(0, 1, 2)) / step


def test_a_per_channel_dense_grid_is_the_int8_files_filter():
    # Units whose 4-bit steps span 1 to 512: the file's filter, dequantized, is the Keras layer's
    # quantized kernel (a per-tensor int8 range on the largest step holds the narrow units at 0).
    from nce_tf.export.delegation import interpreter
    from nce_tf.export.tflite_graph import convert, kernel_tag
    from nce_tf.layers import QuantDense
    from nce_tf.quant import Uniform

    i = keras.Input((3, 16))  # a dense layer on a rank-3 input: the 1x1 conv reshapes and back
    fc = QuantDense(4, kernel_quantizer=Uniform(bits=4), bias_initializer=keras.initializers.Constant(0.5), name="fc")
    model = keras.Model(i, fc(i))
    rng = np.random.default_rng(0)
    fc.kernel.assign((rng.normal(size=(16, 4)) * [1.0, 8.0, 64.0, 512.0]).astype("float32"))
    images = rng.normal(size=(32, 3, 16)).astype("float32")
    flat, _ = convert(model, images)
    # the outputs: Keras's within two output steps (a bias of 0.5 on every unit is a splat constant, which
    # the converter would scale by the first unit's weight step: 4 to 256 off on the others)
    want, got = model(images).numpy(), run_tflite(flat, images, "builtin")[0]
    assert np.abs(got - want).max() <= 2 * (want.max() - min(want.min(), 0)) / 255
    it = interpreter(flat, "builtin")
    (f,) = [d for d in it.get_tensor_details() if kernel_tag(fc) in d["name"].split(";")]
    q = f["quantization_parameters"]
    axis = q["quantized_dimension"]
    assert f["shape"][axis] == 4 and len(q["scales"]) == 4  # one scale per unit
    filt = it.get_tensor(f["index"]) * np.expand_dims(q["scales"], tuple(d for d in range(f["shape"].size) if d != axis))
    got = np.moveaxis(filt, axis, -1).reshape(-1, 4)  # [units, ..., inputs] -> [inputs, units]
    np.testing.assert_allclose(got, fc.quantized_kernel().numpy(), rtol=1e-6, atol=0)


def test_int4_covers_depthwise_and_dense_and_keeps_what_int4_cannot_hold():
    from nce_tf.export.delegation import filter_ops_by_runner, interpreter, runners
    from nce_tf.export.tflite_graph import convert, kernel_tag

    model = _depthwise_net()
    images = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype("float32")
    flat8, _ = convert(model, images)
    flat4, report = to_int4(flat8, {kernel_tag(layer): layer.name for layer in quantized_layers(model)})
    assert sorted((e["layer"], e["op"]) for e in report["int4"]) == [
        ("dw", "DEPTHWISE_CONV_2D"), ("hidden", "FULLY_CONNECTED"), ("pw", "CONV_2D")]
    assert [e["layer"] for e in report["int8"]] == ["four_bit"] and "outside int4" in report["int8"][0]["reason"]
    np.testing.assert_array_equal(run_tflite(flat4, images, "builtin")[0], run_tflite(flat8, images, "builtin")[0])
    runs = runners(flat4, {e["tensor"] for e in report["int4"]})
    assert runs["builtin"] == {op: {"delegated": 0, "kernels": 1}
                               for op in ("DEPTHWISE_CONV_2D", "CONV_2D", "FULLY_CONNECTED")}
    # Measured with ai-edge-litert 2.3.0: the reference kernels have no DEPTHWISE_CONV_2D version 7 (the int4
    # depthwise), so they refuse the int4 file, naming that op; the same graph in int8 they run whole on their
    # own kernels (a reference runner that fails for any other reason fails one of the two).
    assert "DEPTHWISE_CONV_2D' version '7'" in runs["reference"]["error"], runs["reference"]
    int8_reference = filter_ops_by_runner(interpreter(flat8, "reference"), {e["tensor"] for e in report["int4"]})
    assert int8_reference == runs["builtin"]
