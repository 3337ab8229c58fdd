"""nce-tf's W2A2 QAT against tfmot's, on the same ResNet-20, data and schedule; one framework per process.

tfmot (tensorflow-model-optimization) only quantizes Keras 2 (``tf_keras``) models, and importing it
switches ``tf.keras`` to Keras 2 for the whole process, so each framework runs in its own process:

    python -m nce_tf.benchmarks.qat_compare --framework=nce   --steps=20 --train_epochs=4
    python -m nce_tf.benchmarks.qat_compare --framework=tfmot --steps=20 --train_epochs=4

Each prints one JSON object: the test accuracy after the same short schedule on the synthetic task
(same images, same augmentation, SGD 0.1 Nesterov, cosine; each layer's initialiser seeded on its
own from the run's ``--seed``, as nce-tf's zoo does, and the data order from it too: the synthetic
images themselves are one fixed task for every seed), the median training-step time at batch 128 (after
warm-up, timed after that training), and the process's peak resident memory.  ``tools/bench.py tfmot``
runs both, one after the other, and prints the ratios.

The tfmot network mirrors nce-tf's: the TAS CIFAR ResNet-20 (stride-2 shortcut = 2x2 average pool +
1x1 conv + BN), first conv, classifier and shortcuts float, every other conv with 2-bit weights
(tfmot's ``LastValueQuantizer``, symmetric) and every ReLU with 2-bit activations (tfmot's
``MovingAverageQuantizer``, asymmetric), through ``quantize_annotate_layer`` + ``quantize_apply``.
tfmot has no SAWB or PACT: its quantizers take the min / max of the tensor (last value or moving
average), which is part of what the accuracy comparison shows.
"""

import argparse
import importlib.metadata
import json
import os
import resource
import statistics
import sys
import time

import numpy as np

from nce_tf import provenance


# The synthetic task is the same for every run; a run's seed draws its initialisation and data order.
TASK_SEED = 0


def _data(batch_size, seed):
    # TensorFlow after argparse: this comparison runs as its own process
    import tensorflow as tf

    from nce_tf import data

    source = data.get_source("synthetic", seed=TASK_SEED, synthetic_train_size=2048, synthetic_test_size=512)
    train = data.make_pipeline(source.train, source.info, training=True, batch_size=batch_size, seed=seed)
    test = data.make_pipeline(source.test, source.info, training=False, batch_size=256)
    return train, test, tf


def _tfmot_model(seed):
    # Optional dependencies (tensorflow-model-optimization and tf_keras): imported only by this comparison.
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras as k2

    WeightConfig, ActivationConfig = _tfmot_configs(tfmot)
    inputs, outputs = _tfmot_resnet20(tfmot, k2, WeightConfig, ActivationConfig, seed)
    annotated = k2.Model(inputs, outputs)  # only the layers annotated get quantized
    with tfmot.quantization.keras.quantize_scope({"WeightConfig": WeightConfig, "ActivationConfig": ActivationConfig}):
        model = tfmot.quantization.keras.quantize_apply(annotated)
    return model, k2, tf


def _tfmot_configs(tfmot):
    """TFMOT's quantize configs of nce-tf's W2A2 setting: 2-bit symmetric per-tensor weights (convs), 2-bit
    activations (ReLUs)."""
    quantizers = tfmot.quantization.keras.quantizers

    class WeightConfig(tfmot.quantization.keras.QuantizeConfig):
        def get_weights_and_quantizers(self, layer):
            return [(layer.kernel, quantizers.LastValueQuantizer(num_bits=2, symmetric=True, narrow_range=False,
                                                                 per_axis=False))]

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            layer.kernel = quantize_weights[0]

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return []

        def get_config(self):
            return {}

    class ActivationConfig(WeightConfig):
        def get_weights_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def get_output_quantizers(self, layer):
            return [quantizers.MovingAverageQuantizer(num_bits=2, symmetric=False, narrow_range=False, per_axis=False)]

    return WeightConfig, ActivationConfig


def _tfmot_resnet20(tfmot, k2, WeightConfig, ActivationConfig, seed):
    """ResNet-20 in tf_keras, annotated for TFMOT as nce-tf's zoo quantizes it: ``(inputs, logits)``."""
    annotate = tfmot.quantization.keras.quantize_annotate_layer
    reg = k2.regularizers.L2(5e-4 / 2)
    # One initialiser per layer, each with its own seed drawn from the run's seed, as nce-tf's zoo makes
    # one per layer: a Keras initialiser shared by every conv gives every conv of one shape the same kernel.
    layer_seeds = np.random.default_rng(seed)

    def init():
        return k2.initializers.VarianceScaling(2.0, mode="fan_out", distribution="untruncated_normal",
                                               seed=int(layer_seeds.integers(2**31 - 1)))

    def conv(x, filters, stride, kernel=3, quantized=True):
        layer = k2.layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, kernel_initializer=init(),
                                 kernel_regularizer=reg)
        return (annotate(layer, WeightConfig()) if quantized else layer)(x)

    def bn(x):
        return k2.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)

    def act(x):
        return annotate(k2.layers.ReLU(), ActivationConfig())(x)

    inputs = k2.Input((32, 32, 3))
    x = act(bn(conv(inputs, 16, 1, quantized=False)))
    in_width = 16
    for s, width in enumerate((16, 32, 64)):
        for b in range(3):
            stride = 2 if s > 0 and b == 0 else 1
            y = act(bn(conv(x, width, stride)))
            y = bn(conv(y, width, 1))
            if stride != 1 or in_width != width:
                sc = k2.layers.AveragePooling2D(stride)(x) if stride != 1 else x
                sc = bn(conv(sc, width, 1, kernel=1, quantized=False))
            else:
                sc = x
            x = act(k2.layers.Add()([y, sc]))
            in_width = width
    x = k2.layers.GlobalAveragePooling2D()(x)
    outputs = k2.layers.Dense(10, kernel_initializer=k2.initializers.RandomNormal(
                                  stddev=0.01, seed=int(layer_seeds.integers(2**31 - 1))),
                              kernel_regularizer=reg)(x)
    return inputs, outputs


def _nce_model():
    # TensorFlow after argparse: this comparison runs as its own process
    import keras

    from nce_tf import models

    return models.build_model("resnet20", policy=models.QuantPolicy(w_bits=2, a_bits=2), weight_decay=5e-4), keras


def run(framework, steps=20, warmup_steps=5, train_epochs=4, batch_size=128, seed=0):
    versions = _versions(framework)  # first: a missing distribution fails before the training, not after
    if framework == "tfmot":
        # optional dependency (tf_keras, for TFMOT)
        import tf_keras

        tf_keras.utils.set_random_seed(seed)
        model, k, _ = _tfmot_model(seed)
    else:
        # TensorFlow after argparse: this comparison runs as its own process
        import keras

        keras.utils.set_random_seed(seed)
        model, k = _nce_model()
    train, test, tf = _data(batch_size, seed)
    epoch_steps = 2048 // batch_size
    schedule = k.optimizers.schedules.CosineDecay(0.1, train_epochs * epoch_steps)
    model.compile(k.optimizers.SGD(schedule, momentum=0.9, nesterov=True),
                  k.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    # The accuracy run comes first, from the fresh initialisation and with the whole schedule;
    # the timed steps after it (the schedule has ended: their updates are zero, their cost is not).
    model.fit(train.repeat(), epochs=train_epochs, steps_per_epoch=epoch_steps, verbose=0)
    _, accuracy = model.evaluate(test, verbose=0)
    x, y = next(iter(train))
    for _ in range(warmup_steps):
        model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return {"framework": framework, "step_s": statistics.median(times), "test_accuracy": float(accuracy),
            "train_epochs": train_epochs, "batch_size": batch_size, "seed": seed,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "versions": versions}


def _versions(framework):
    out = provenance.versions()
    if framework == "tfmot":  # this process trains with tf-keras: its "keras" entry is only what is installed
        out.update({dist: importlib.metadata.version(dist) for dist in ("tensorflow-model-optimization", "tf-keras")})
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=("nce", "tfmot"), required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup_steps", type=int, default=5)
    parser.add_argument("--train_epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.framework == "tfmot":
        os.environ["TF_USE_LEGACY_KERAS"] = "1"  # before TensorFlow loads: tf.keras must be Keras 2 here
        try:
            import tensorflow_model_optimization  # noqa: F401
            import tf_keras  # noqa: F401
        except ImportError:
            print("error: tfmot is not installed. Allowed: pip install -e .[tfmot]", file=sys.stderr)
            sys.exit(2)
    print(json.dumps(run(args.framework, args.steps, args.warmup_steps, args.train_epochs, seed=args.seed)), flush=True)


if __name__ == "__main__":
    main()
