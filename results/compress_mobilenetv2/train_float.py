"""A Keras user's float MobileNetV2 on the CIFAR-10 subset, trained with plain Keras (no nce-tf).

The network is ``keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=ALPHA, weights=None,
classes=10, classifier_activation=None)``: logits out, as ``nce-tf compress`` distils from.  Images
are fed as nce-tf's pipeline feeds 32 x 32 data (``(x - mean) / std`` with CIFAR-10's per-channel
statistics, x on 0..255), so the trained network sees at compression time what it saw here; the
training augmentation is CIFAR's pad-4 random crop and horizontal flip, in numpy.

Two settings a short from-scratch run needs: every BatchNormalization's momentum is set to 0.9
(Keras's MobileNetV2 builds them at 0.999, whose moving statistics after a few hundred steps are
still mostly their initial values: the network then scores at chance in inference mode), and the
gradient is clipped to global norm 5 (a from-scratch MobileNetV2 at 1 x 1 final maps can take an
exploding first step).

Writes ``OUT/mobilenetv2.keras``, ``OUT/mobilenetv2_float.tflite`` and ``OUT/mobilenetv2_int8_ptq.tflite``
(TFLite's own post-training int8 quantization of the uncompressed network, for the size comparison)
and ``OUT/train_metrics.json`` (per-epoch history, test accuracy, file sizes, wall and CPU time).

Usage::

    python results/compress_mobilenetv2/train_float.py --out=runs/mnv2 --epochs=30
"""

import argparse
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from nce_tf.data.info import CIFAR10_MEAN, CIFAR10_STD

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data",
                    "cifar10-subset", "cifar10_subset.npz")


def normalise(x):
    return ((x.astype("float32") - np.float32(CIFAR10_MEAN)) / np.float32(CIFAR10_STD)).astype("float32")


def augment(x, rng):
    """Pad 4, random 32 x 32 crop, random horizontal flip (uint8 in, uint8 out)."""
    padded = np.pad(x, ((0, 0), (4, 4), (4, 4), (0, 0)), mode="constant")
    out = np.empty_like(x)
    dy, dx, flip = rng.integers(0, 9, len(x)), rng.integers(0, 9, len(x)), rng.random(len(x)) < 0.5
    for i in range(len(x)):
        crop = padded[i, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        out[i] = crop[:, ::-1] if flip[i] else crop
    return out


def tflite_sizes(model, x_calib, out):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    flat = converter.convert()
    with open(os.path.join(out, "mobilenetv2_float.tflite"), "wb") as f:
        f.write(flat)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x_calib[i:i + 1]] for i in range(len(x_calib)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    int8 = converter.convert()
    with open(os.path.join(out, "mobilenetv2_int8_ptq.tflite"), "wb") as f:
        f.write(int8)
    return {"float_tflite": len(flat), "int8_ptq_tflite": len(int8)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--alpha", type=float, default=0.35)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    wall, cpu = time.time(), time.process_time()
    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    with np.load(args.data) as d:
        x, y, xt, yt = d["x_train"], d["y_train"].astype("int64"), d["x_test"], d["y_test"].astype("int64")

    model = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=args.alpha, weights=None, classes=10,
                                           classifier_activation=None)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9  # module doc
    steps = args.epochs * (len(x) // args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(args.lr, steps)
    model.compile(keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True, weight_decay=4e-5,
                                       global_clipnorm=5.0),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = []
    for epoch in range(args.epochs):
        order = rng.permutation(len(x))[:len(x) // args.batch_size * args.batch_size]
        h = model.fit(normalise(augment(x[order], rng)), y[order], batch_size=args.batch_size, epochs=1,
                      shuffle=False, verbose=0)
        loss, acc = model.evaluate(normalise(xt), yt, batch_size=256, verbose=0)
        history.append({"epoch": epoch + 1, "train_loss": h.history["loss"][0], "train_accuracy":
                        h.history["accuracy"][0], "test_loss": loss, "test_accuracy": acc,
                        "wall_seconds": round(time.time() - wall, 1)})
        print(json.dumps(history[-1]), flush=True)
    path = os.path.join(args.out, "mobilenetv2.keras")
    model.save(path)
    train_wall, train_cpu = time.time() - wall, time.process_time() - cpu
    sizes = {"keras": os.path.getsize(path), **tflite_sizes(model, normalise(x[:256]), args.out)}
    metrics = {"model": f"keras.applications.MobileNetV2(alpha={args.alpha}, 32x32, weights=None)",
               "params": model.count_params(), "data": os.path.abspath(args.data), "train_images": len(x),
               "test_images": len(xt), "settings": vars(args), "test_accuracy": history[-1]["test_accuracy"],
               "history": history, "file_bytes": sizes,
               "times": {"train_wall_seconds": round(train_wall, 1), "train_cpu_seconds": round(train_cpu, 1)},
               "versions": {"tensorflow": tf.__version__, "keras": keras.__version__}}
    with open(os.path.join(args.out, "train_metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2)
    print(json.dumps({k: metrics[k] for k in ("test_accuracy", "file_bytes", "times")}), flush=True)


if __name__ == "__main__":
    main()
