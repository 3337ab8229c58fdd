"""The sensitivity probe against retraining on a network whose answer is known: a 1x1 bottleneck.

A four-conv network on the synthetic task (``c1`` 16 channels, ``c2`` 32, ``neck`` a 1x1 conv of 2
channels, ``c4`` 32, then pooling and a dense classifier): the 2-channel neck is where the network
is starved of width, so retraining it with a wider neck must help and a narrower one hurt.  Per
seed this measures

- the **ground truth**: the network trained from scratch (same recipe, same seed) with the neck at
  1, 2 and 4 channels, test cross-entropy and accuracy of each;
- the **one-shot probe** (:func:`nce_tf.analysis.sensitivity.probe`) of the seed's 2-channel
  network, every searchable layer at 0.5x and 2x.

so whether the probe sees what retraining sees, in both directions, is a measurement.  What it
showed (``nce-tf analyze known-answer``, README "Does quantization make width matter?"): the
probe ranks the neck's narrowing first and its widening first among the widenings, as retraining
does, but gives the widening a quarter of retraining's ~0.2 nats: new channels trained for a few
epochs of a fine-tuning do not reach what a network trained at that width from the start learns.
(Before their start was made live behind the ReLU, 1e862a4, the widening read no gain at all.)

Example::

    result = run(seeds=(0, 1, 2), out_dir="runs/known_answer")
    print(markdown(result))
"""

import os

import keras
import numpy as np

from nce_tf import data, models, provenance, sources
from nce_tf.analysis.probe_config import ProbeConfig
from nce_tf.analysis.sensitivity import probe
from nce_tf.train.config import TrainConfig

NECKS = (1, 2, 4)


def neck_model(neck=2):
    """The constructed network: three 3x3 convs around a ``neck``-channel 1x1 conv, BN and ReLU after each."""
    layers = keras.layers
    x = inp = keras.Input((32, 32, 3), name="image")
    for name, width, k, s in (("c1", 16, 3, 1), ("c2", 32, 3, 2), ("neck", neck, 1, 1), ("c4", 32, 3, 2)):
        x = layers.Conv2D(width, k, strides=s, padding="same", use_bias=False, name=name)(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        x = layers.ReLU(name=f"{name}_relu")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, layers.Dense(10, name="fc")(x))


def source(seed=0):
    """The synthetic task the network is trained on (2048 training, 512 test images)."""
    return sources.source_for(TrainConfig(synthetic_train_size=2048, synthetic_test_size=512, seed=seed))


def train_neck(neck, seed, src, epochs=8, steps=32):
    """The network with a ``neck``-channel neck trained from scratch (Adam, batches of 64); returns
    ``(model, {"ce", "accuracy"})`` on the test split."""
    keras.utils.set_random_seed(seed)
    model = neck_model(neck)
    train = data.make_pipeline(src.train, src.info, training=True, batch_size=64, seed=seed)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(train.repeat(), steps_per_epoch=steps, epochs=epochs, verbose=0)
    ce, accuracy = model.evaluate(data.make_pipeline(src.test, src.info, training=False, batch_size=256), verbose=0)
    return model, {"ce": float(ce), "accuracy": float(accuracy)}


def run(seeds=(0, 1, 2), out_dir=".", probe_config=None, verbose=True):
    """Ground truth and probe per seed (see the module doc); the probed networks go to ``out_dir``.

    Returns:
        ``{"seeds": [{"seed", "retrained": {neck: {"ce", "accuracy"}}, "probe": [changes]}],
        "probe_settings", "provenance"}``.
    """
    config = probe_config or ProbeConfig(ratios=(0.5, 2.0), epochs=3, lr=0.05, bn_batches=4)
    src = source()
    os.makedirs(out_dir, exist_ok=True)
    out = {"seeds": [], "probe_settings": {"ratios": list(config.ratios), "epochs": config.epochs, "lr": config.lr,
                                           "bn_batches": config.bn_batches}}
    for seed in seeds:
        retrained, probed = {}, None
        for neck in NECKS:
            model, retrained[str(neck)] = train_neck(neck, seed, src)
            if neck == 2:
                path = os.path.join(out_dir, f"neck2_s{seed}.keras")
                model.save(path)
                probed = probe(model, "keras:" + path, models.QuantPolicy(), src, config, verbose=False)
        changes = [{k: c[k] for k in ("layer", "ratio", "n", "width", "delta_ce", "delta_accuracy")}
                   for c in probed["changes"]]
        out["seeds"].append({"seed": seed, "retrained": retrained, "probe": changes})
        if verbose:
            print(f"nce-tf: known answer, seed {seed}: retrained CE " +
                  ", ".join(f"neck {n} {retrained[str(n)]['ce']:.3f}" for n in NECKS), flush=True)
    out["provenance"] = provenance.record()
    return out


def markdown(result):
    """Per seed: retrained CE change of the neck at 1 and 4 channels (from 2), and the probe's CE change of
    every layer at 0.5x and 2x; then the means."""
    layers = sorted({(c["layer"], c["ratio"]) for s in result["seeds"] for c in s["probe"]},
                    key=lambda k: (k[0] != "neck", k))
    head = ("| seed | retrained: neck 2 -> 1 | retrained: neck 2 -> 4 | " +
            " | ".join(f"probe: {name} {ratio}x" for name, ratio in layers) + " |")
    lines = [head, "|---" * (3 + len(layers)) + "|"]
    rows = []
    for s in result["seeds"]:
        r = s["retrained"]
        by = {(c["layer"], c["ratio"]): c["delta_ce"] for c in s["probe"]}
        row = [r["1"]["ce"] - r["2"]["ce"], r["4"]["ce"] - r["2"]["ce"], *[by[k] for k in layers]]
        rows.append(row)
        lines.append(f"| {s['seed']} | " + " | ".join(f"{v:+.3f}" for v in row) + " |")
    lines.append("| mean | " + " | ".join(f"{v:+.3f}" for v in np.mean(rows, axis=0)) + " |")
    return "\n".join(lines) + ("\n\nTest cross-entropy changes (nats; positive = worse). Retrained: the network "
                               "trained from scratch at that neck width minus at 2 channels, same seed. Probe: the "
                               "one-shot estimate on the seed's 2-channel network.")
