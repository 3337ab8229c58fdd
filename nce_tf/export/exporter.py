"""The export job behind ``tools/export.py``: a trained work directory -> ``DIR/export/``.

Writes, all at once (into ``DIR/export.tmp`` first, renamed to ``DIR/export`` only when every
file and every parity check is done, so a crash never leaves half an export):

- ``model.keras``: the trained network (reloads in safe mode with identical outputs);
- ``saved_model/``: ``model.export`` with a ``serve`` signature taking float images already
  normalised as in training, ``(x - mean) / std`` per channel on the 0..255 scale;
- ``model_int8.tflite``: integer-only TFLite whose 2-bit kernels and PACT activations keep their
  grids exactly (:mod:`nce_tf.export.tflite_graph`); float or int8 input/output (``int8_io``);
- ``model_int4.tflite``: the int8 file with the quantized layers' filters stored as int4, two a
  byte (:mod:`nce_tf.export.int4`); the same outputs as the int8 file on the same kernels;
- ``model_float.tflite``: the same network in float32 ops (BN folded, the quantized kernels as float
  constants, PACT rounded in float: :func:`~nce_tf.export.tflite_graph.convert_float`), for the size
  comparison and as a float reference;
- ``weights_2bit.npz``: packed codes of every quantized layer (:mod:`nce_tf.export.packed`);
- ``model_card.json``: widths, bits, MACs, PARAMs, weight memory at the layers' bit widths vs
  float32, test accuracy of the Keras and the TFLite model on the same images, the parity
  measured (top-1 agreement, max logit difference against the int8 output step, SavedModel
  and ``.keras`` vs Keras), the int4 file's layers, its agreement with the int8 file on the
  builtin kernels and on XNNPACK and which of its int4 ops XNNPACK runs
  (:mod:`nce_tf.export.delegation`), file sizes and tool versions; ``provenance``: the export's
  code state, versions and time (:mod:`nce_tf.provenance`), and ``training_provenance``: the
  trained run's, from its ``metrics.json``.

The TFLite model runs on ``ai-edge-litert`` (the maintained interpreter).

A network trained under a mixed-precision policy (``--mixed_precision``) is exported as its float32
copy (:func:`nce_tf.mixed_precision.as_float32`: the same float32 variables, every layer computing in
float32), so every file, calibration range and parity check is the float32 export path's.
"""

import importlib.metadata
import json
import os
import shutil
import warnings

import keras
import numpy as np
import tensorflow as tf

from nce_tf import cost, data, mixed_precision, provenance, sources
from nce_tf.errors import UsageError
from nce_tf.export.delegation import REFUSED, interpreter, one_line, runners
from nce_tf.export.grid import integer_grid
from nce_tf.export.int4 import to_int4
from nce_tf.export.packed import quantized_layers, read_packed, write_packed
from nce_tf.export.tflite_graph import convert, convert_float, kernel_tag
from nce_tf.export.workdir import check_export_dir, find_trained_model
from nce_tf.train.config import TrainConfig


def load_model(path):
    """Loads a ``.keras`` file in safe mode; a corrupt file is a one-line error."""
    import nce_tf.layers  # noqa: F401  registers the custom layers
    import nce_tf.quant  # noqa: F401

    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as e:  # noqa: BLE001  any failure to read the file is the user's file's problem
        reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise UsageError(f"Cannot load the model file ({type(e).__name__}: {reason}). Received: {path!r}") from None


def run_tflite(flatbuffer, images, kernels="auto"):
    """Runs a TFLite model on ``images`` one at a time; returns float outputs (dequantized).

    ``kernels``: as :func:`nce_tf.export.delegation.interpreter` (``"auto"``: XNNPACK, or the
    builtin kernels when XNNPACK refuses the graph).
    """
    it = interpreter(flatbuffer, kernels)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    in_scale, in_zero = inp["quantization"]
    out_scale, out_zero = out["quantization"]
    results = []
    for image in images:
        x = image[None]
        if inp["dtype"] == np.int8:
            x = np.clip(np.round(x / in_scale + in_zero), -128, 127).astype(np.int8)
        it.set_tensor(inp["index"], x)
        it.invoke()
        y = it.get_tensor(out["index"])[0]
        results.append((y.astype("float32") - out_zero) * out_scale if out["dtype"] == np.int8 else y)
    return np.array(results), (out_scale if out_scale else None)


def _output_step(flatbuffer):
    # LiteRT only when a TFLite file is run
    from ai_edge_litert.interpreter import Interpreter

    with warnings.catch_warnings():  # keeping every tensor is meant for debugging; this reads one scale
        warnings.simplefilter("ignore")
        it = Interpreter(model_content=flatbuffer, experimental_preserve_all_tensors=True)
    details = {d["index"]: d for d in it.get_tensor_details()}
    out_index = it.get_output_details()[0]["index"]
    scale = details[out_index]["quantization"][0]
    if not scale:  # float output: the int8 logits tensor feeds the final dequantize
        int8 = [d for d in details.values() if d["dtype"] == np.int8 and len(d["shape"]) == 2]
        scale = int8[-1]["quantization"][0] if int8 else 0.0
    return float(scale)


def _dir_size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def run_export(workdir, *, int8_io=False, parity_samples=512, calibration_samples=256, verbose=True):
    """Exports the trained network of ``workdir`` (see the module doc); returns the model card."""
    workdir = os.path.abspath(workdir)
    model_path, run_dir = find_trained_model(workdir)
    config_path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(config_path):
        raise UsageError(f"The training run has no config.json. Received: workdir={workdir!r}")
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    model = load_model(model_path)
    if not isinstance(config, dict) or "dataset" not in config:
        raise UsageError(f"The training run's config.json names no dataset. Received: {config_path!r}")
    trained = TrainConfig.from_settings(config)
    source = sources.source_for(trained)
    take = lambda ds, n: [a.numpy() for a in next(iter(  # noqa: E731
        data.make_pipeline(ds.take(n), source.info, training=False, batch_size=n)))]
    calib = take(source.train, calibration_samples)[0]
    images, labels = take(source.test, parity_samples)
    info = source.info
    widths = config.get("widths")
    metrics_path = os.path.join(run_dir, "metrics.json")
    metrics = {}
    if os.path.isfile(metrics_path):
        with open(metrics_path, encoding="utf-8") as f:
            metrics = json.load(f)
    if widths is None:  # a model_fn run records its widths when built
        widths = metrics.get("widths")
    metadata = {
        "model": config.get("resolved_model"), "widths": widths,
        "w_bits": trained.w_bits, "a_bits": trained.a_bits,
        "weight_quantizer": trained.weight_quantizer, "dataset": trained.dataset,
        "input": "float32 images normalised as in training: (x - mean) / std per channel, x on 0..255",
        "input_mean": list(info.mean), "input_std": list(info.std), "input_shape": list(info.image_shape),
        "training_provenance": metrics.get("provenance"),  # the trained run's (the card's own: the export's)
    }
    card = export_model(model, os.path.join(workdir, "export"), calib, images, labels, int8_io=int8_io,
                        metadata=metadata, verbose=verbose)
    if verbose:
        p = card["parity"]
        files = card["files"]
        print(f"nce-tf: exported to {workdir}/export: TFLite int8 {files['model_int8.tflite']} bytes (int4 "
              f"{files['model_int4.tflite']}, float {files['model_float.tflite']}), "
              f"top-1 agreement {p['tflite_top1_agreement']:.4f}, max logit diff {p['tflite_max_logit_diff']:.4f} "
              f"(int8 output step {p['int8_output_step']:.4f}); "
              f"int4 vs int8 on the builtin kernels: {_agreement(card['int4']['vs_int8']['builtin'])}", flush=True)
    return card


def export_model(model, out_dir, calibration_images, test_images, test_labels=None, *, int8_io=False,
                 metadata=None, verbose=False):
    """Exports a trained Keras model into ``out_dir`` (written whole or not at all).

    Args:
        model: a trained nce-tf network (zoo or derived; float, WxAy QAT; a mixed-precision one is
            exported as its float32 copy, module doc).
        out_dir: the export directory; built as ``out_dir + ".tmp"`` and renamed when complete.
        calibration_images: representative inputs (normalised as in training) for the ranges of the
            layers kept at full precision.
        test_images: inputs for the parity checks (and the accuracy, with ``test_labels``).
        int8_io: int8 input / output tensors in the TFLite model instead of float.
        metadata: extra entries for ``model_card.json``.

    Returns:
        The model card (also written to ``out_dir/model_card.json``).

    Example::

        card = nce_tf.export.export_model(model, "out/export", x_train[:256], x_test[:512], y_test[:512])
        card["parity"]["tflite_top1_agreement"]
    """
    out_dir = check_export_dir(out_dir)
    model = mixed_precision.as_float32(model)
    tmp = out_dir.rstrip("/") + ".tmp"
    try:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        os.makedirs(tmp)
    except OSError as e:
        raise UsageError(f"Export directory is not writable ({e.strerror}). Received: {out_dir!r}") from None
    try:
        card = _export_into(tmp, model, metadata or {}, np.asarray(calibration_images, "float32"),
                            np.asarray(test_images, "float32"), test_labels, int8_io, verbose)
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return card


def _export_into(out, model, metadata, calib, images, labels, int8_io, verbose):
    clock = provenance.PhaseClock()  # the export's own code state and time
    clock.phase("export")
    log = (lambda m: print(f"nce-tf: export: {m}", flush=True)) if verbose else (lambda m: None)
    reference = model.predict(images, verbose=0, batch_size=64)

    keras_diff, saved_diff = _keras_files(out, model, images, reference, log)
    flat, lite, step = _int8_files(out, model, calib, images, int8_io, log)
    log("int4 TFLite")
    flat4, packing = to_int4(flat, {kernel_tag(layer): layer.name for layer in quantized_layers(model)})
    with open(os.path.join(out, "model_int4.tflite"), "wb") as f:
        f.write(flat4)
    meta = _packed_file(out, model, metadata, log)

    model_cost = cost.count_model(model)
    accuracy = (lambda y: float((y.argmax(1) == np.asarray(labels)).mean())) if labels is not None else (
        lambda y: None)
    card = {
        "model": model.name, **metadata,
        "macs": model_cost.macs, "params": model_cost.params,
        "weight_memory_bytes": model_cost.memory_bytes, "float32_weight_memory_bytes": model_cost.float_memory_bytes,
        "quantized_layers": [entry["name"] for entry in meta["layers"]],
        "test_samples": int(len(images)),
        "keras_test_accuracy": accuracy(reference),
        "tflite_test_accuracy": accuracy(lite),
        "parity": {
            "tflite_top1_agreement": float((lite.argmax(1) == reference.argmax(1)).mean()),
            "tflite_max_logit_diff": float(np.abs(lite - reference).max()),
            "tflite_mean_logit_diff": float(np.abs(lite - reference).mean()),
            "int8_output_step": step,
            "saved_model_max_diff": saved_diff, "keras_reload_max_diff": keras_diff,
        },
        "int4": _int4_card(flat, flat4, packing, images, accuracy),
        "int8_io": bool(int8_io),
        "files": {name: (_dir_size(os.path.join(out, name)) if os.path.isdir(os.path.join(out, name))
                         else os.path.getsize(os.path.join(out, name))) for name in sorted(os.listdir(out))},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "ai_edge_litert": _litert_version()},
        "provenance": provenance.record(clock),
    }
    card["files"]["model_card.json"] = None
    with open(os.path.join(out, "model_card.json"), "w", encoding="utf-8") as f:
        json.dump(card, f, indent=2)
    return card


def _keras_files(out, model, images, reference, log):
    """``model.keras`` and ``saved_model/``, each read back: the largest output difference of each."""
    log("model.keras")
    keras_path = os.path.join(out, "model.keras")
    model.save(keras_path)
    reloaded = load_model(keras_path)
    keras_diff = float(np.abs(reloaded.predict(images, verbose=0, batch_size=64) - reference).max())

    log("SavedModel")
    saved_path = os.path.join(out, "saved_model")
    model.export(saved_path, verbose=False)
    loaded = tf.saved_model.load(saved_path)  # keep a reference: serve's variables live on it
    saved = np.concatenate([loaded.serve(tf.constant(images[i:i + 64])).numpy() for i in range(0, len(images), 64)])
    return keras_diff, float(np.abs(saved - reference).max())


def _int8_files(out, model, calib, images, int8_io, log):
    """``model_int8.tflite`` and ``model_float.tflite``: the int8 flatbuffer, its outputs on ``images``
    and its output step."""
    log("int8 TFLite")
    flat, _ = convert(model, calib, int8_io=int8_io)
    with open(os.path.join(out, "model_int8.tflite"), "wb") as f:
        f.write(flat)
    float_flat = convert_float(model)
    with open(os.path.join(out, "model_float.tflite"), "wb") as f:
        f.write(float_flat)
    lite, _ = run_tflite(flat, images)
    return flat, lite, _output_step(flat)


def _packed_file(out, model, metadata, log):
    """``weights_2bit.npz``, checked to reproduce the quantized weights; its metadata."""
    log("packed weights")
    packed_path = os.path.join(out, "weights_2bit.npz")
    meta = write_packed(model, packed_path, model_name=metadata.get("model", model.name),
                        widths=metadata.get("widths"))
    for name, g in read_packed(packed_path).items():  # the file reproduces the quantized weights
        if not np.array_equal(g.values(), _grid_values(model.get_layer(name))):
            raise AssertionError(f"packed weights of {name} do not round-trip")
    return meta


def _agreement(entry):
    if "error" in entry:
        return entry["error"]
    return f"top-1 agreement {entry['top1_agreement']:.4f}, max logit diff {entry['max_logit_diff']:.4f}"


def _int4_card(flat, flat4, packing, images, accuracy):
    """What ``model_int4.tflite`` packed, its agreement with the int8 file per kernel set, who runs it."""
    agreement = {}
    for kernels in ("builtin", "xnnpack"):
        try:
            a, _ = run_tflite(flat, images, kernels)
            b, _ = run_tflite(flat4, images, kernels)
        except REFUSED as e:
            agreement[kernels] = {"error": one_line(e)}
            continue
        agreement[kernels] = {"top1_agreement": float((a.argmax(1) == b.argmax(1)).mean()),
                              "max_logit_diff": float(np.abs(a - b).max()),
                              "int8_test_accuracy": accuracy(a), "int4_test_accuracy": accuracy(b)}
    return {
        "int4_layers": [entry["layer"] for entry in packing["int4"]],
        "int8_layers": packing["int8"],
        "filter_bytes": {"int8": sum(e["int8_bytes"] for e in packing["int4"]),
                         "int4": sum(e["int4_bytes"] for e in packing["int4"])},
        "vs_int8": agreement,
        "vs_int8_note": "builtin: the same builtin kernels run both files (they unpack the int4 filters to the "
                        "int8 file's values); xnnpack: each file as XNNPACK delegates it: where it leaves the int4 "
                        "filters to the builtin kernels (filter_ops_run_by) but runs the int8 ones itself, the "
                        "difference is XNNPACK's int8 rounding against the builtin kernels', not the weights",
        "filter_ops_run_by": runners(flat4, {e["tensor"] for e in packing["int4"]}),
    }


def _grid_values(layer):
    return integer_grid(layer).values()


def _litert_version():
    try:
        return importlib.metadata.version("ai-edge-litert")
    except Exception:  # noqa: BLE001
        return None
