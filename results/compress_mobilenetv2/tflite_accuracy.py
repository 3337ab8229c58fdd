"""Test accuracy of the four TFLite files of the demo on the CIFAR-10 subset's 1017 test images.

The uncompressed network's float file and TFLite's own post-training int8 quantization of it
(``train_float.py``), and the compressed network's float and int8 files (``nce-tf compress``'s
export), each run one image at a time by :func:`nce_tf.export.exporter.run_tflite` on images
normalised as in training.  Writes ``tflite_accuracy.json`` beside this script.

Usage::

    python results/compress_mobilenetv2/tflite_accuracy.py RUNS_DIR
"""

import json
import os
import sys

import numpy as np

from nce_tf.data.info import CIFAR10_MEAN, CIFAR10_STD
from nce_tf.export.exporter import run_tflite

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "..", "shared", "data", "cifar10-subset", "cifar10_subset.npz")


def main(runs):
    with np.load(DATA) as d:
        images = ((d["x_test"] - np.float32(CIFAR10_MEAN)) / np.float32(CIFAR10_STD)).astype("float32")
        labels = d["y_test"]
    files = {"original_float_tflite": "float/mobilenetv2_float.tflite",
             "original_int8_ptq_tflite": "float/mobilenetv2_int8_ptq.tflite",
             "compressed_float_tflite": "compress/export/model_float.tflite",
             "compressed_int8_tflite": "compress/export/model_int8.tflite"}
    out = {}
    for name, path in files.items():
        with open(os.path.join(runs, path), "rb") as f:
            flat = f.read()
        logits, _ = run_tflite(flat, images)
        out[name] = {"test_accuracy": float((logits.argmax(1) == labels).mean()), "bytes": len(flat)}
    with open(os.path.join(HERE, "tflite_accuracy.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
