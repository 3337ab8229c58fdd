"""A small generated image task, for tests and smoke runs without any files.

Why: the search and training loops need a dataset that loads instantly, is identical on
every machine, and that a small CNN can actually learn, so a smoke run shows whether
learning happens at all. Random labels would not show that; CIFAR-10 needs files.

Design (32x32x3 uint8, 10 classes, labels exactly balanced)::

    class = 5 * orientation + frequency_index
    orientation     0: vertical stripes (intensity varies along x)
                    1: horizontal stripes (intensity varies along y)
    frequency       (2, 3, 4.5, 6, 8) cycles per 32 pixels, +-0.3 jitter

Each image is a sine grating of its class, with a random phase, a random tilt of up to
+-12 degrees, a random amplitude (25..70) and a random per-channel colour tint, on a
random per-channel background (60..190). A class-independent "clutter" grating (random
orientation, 1.5..9 cycles, amplitude up to that of the signal) and Gaussian pixel
noise (sigma 35) are added, then the result is rounded and clipped to 0..255.

Properties this buys:

* Colour and brightness carry no class information (a nearest-class-mean on raw pixels
  is at chance), so a model must learn spatial frequency and orientation.
* The CIFAR augmentation keeps the class: a horizontal flip mirrors the tilt and the
  phase but keeps orientation and frequency; a pad-4 random crop only shifts the phase
  and adds a thin black border.
* It is learnable but not trivial: a 3-layer CNN reaches about 85-90% test accuracy
  after ~8 epochs on 2048 images (about 10 s on a CPU), starting near chance.

Determinism: train and test come from two independent child streams of
``numpy.random.SeedSequence(seed)``, so the test split does not change when the train
size does, and the same seed always gives the same arrays.

Normalisation statistics: mean/std are computed per channel from the generated
training split (not the CIFAR-10 constants), so normalised inputs are centred.

Example::

    source = synthetic_source(seed=0, train_size=2048, test_size=512)
    x, y = source.train_arrays      # uint8 (2048, 32, 32, 3), int64 (2048,)
"""

import numpy as np

from nce_tf.data.info import DatasetInfo, Source
from nce_tf.data.memory import source_from_arrays

NUM_CLASSES = 10
IMAGE_SIZE = 32
FREQUENCIES = (2.0, 3.0, 4.5, 6.0, 8.0)
_FREQ_JITTER = 0.3
_TILT_DEGREES = 12.0
_NOISE_SIGMA = 35.0


def _gratings(frequency, angle, phase):
    """Sine gratings, one per row of the (n,) parameter arrays, shape (n, 32, 32)."""
    yy, xx = np.meshgrid(np.arange(IMAGE_SIZE), np.arange(IMAGE_SIZE), indexing="ij")
    f = frequency[:, None, None] * (2.0 * np.pi / IMAGE_SIZE)
    along = xx * np.cos(angle)[:, None, None] + yy * np.sin(angle)[:, None, None]
    return np.sin(f * along + phase[:, None, None])


def make_synthetic_arrays(num_examples: int, rng: np.random.Generator):
    """Generates one split of the synthetic task.

    Args:
        num_examples: Number of images.
        rng: The numpy Generator that determines every random choice.

    Returns:
        ``(x, y)``: uint8 ``(num_examples, 32, 32, 3)`` images and int64
        ``(num_examples,)`` labels, each class appearing ``num_examples // 10`` or one
        more times.
    """
    n = num_examples
    labels = rng.permutation(np.arange(n) % NUM_CLASSES)
    orientation = labels // len(FREQUENCIES)
    frequency = np.asarray(FREQUENCIES)[labels % len(FREQUENCIES)]
    frequency = frequency + rng.uniform(-_FREQ_JITTER, _FREQ_JITTER, n)
    # Angle 0 varies along x (vertical stripes); pi/2 varies along y.
    angle = orientation * (np.pi / 2) + np.deg2rad(rng.uniform(-_TILT_DEGREES, _TILT_DEGREES, n))
    signal = _gratings(frequency, angle, rng.uniform(0.0, 2 * np.pi, n))
    clutter = _gratings(
        rng.uniform(1.5, 9.0, n), rng.uniform(0.0, np.pi, n), rng.uniform(0.0, 2 * np.pi, n)
    ) * rng.uniform(0.0, 1.0, n)[:, None, None]
    amplitude = rng.uniform(25.0, 70.0, n)[:, None, None, None]
    background = rng.uniform(60.0, 190.0, (n, 3))[:, None, None, :]
    tint = rng.uniform(0.2, 1.0, (n, 3))[:, None, None, :]
    clutter_tint = rng.uniform(0.2, 1.0, (n, 3))[:, None, None, :]
    images = background + amplitude * (tint * signal[..., None] + clutter_tint * clutter[..., None])
    images = images + rng.normal(0.0, _NOISE_SIGMA, images.shape)
    x = np.clip(np.rint(images), 0, 255).astype(np.uint8)
    return x, labels.astype(np.int64)


def synthetic_source(seed: int = 0, train_size: int = 2048, test_size: int = 512) -> Source:
    """Builds the synthetic stripes task as a :class:`Source`.

    Args:
        seed: Seed for ``numpy.random.SeedSequence``; same seed, same arrays.
        train_size: Number of training images.
        test_size: Number of test images.

    Returns:
        A Source of kind "cifar" with ``train_arrays``/``test_arrays`` set and
        mean/std measured on the training images.
    """
    train_seq, test_seq = np.random.SeedSequence(seed).spawn(2)
    x_train, y_train = make_synthetic_arrays(train_size, np.random.default_rng(train_seq))
    x_test, y_test = make_synthetic_arrays(test_size, np.random.default_rng(test_seq))
    pixels = x_train.reshape(-1, 3).astype(np.float64)
    info = DatasetInfo(
        name="synthetic",
        num_classes=NUM_CLASSES,
        image_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
        num_train=train_size,
        num_test=test_size,
        # Rounded: more digits than this are noise and only clutter logs.
        mean=tuple(np.round(pixels.mean(axis=0), 3)),
        std=tuple(np.round(np.maximum(pixels.std(axis=0), 1e-3), 3)),
        kind="cifar",
    )
    return source_from_arrays(x_train, y_train, x_test, y_test, info)
