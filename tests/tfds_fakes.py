"""Tiny TFDS datasets defined in code, so the first-use download is tested offline.

Defining a ``GeneratorBasedBuilder`` subclass registers it with TFDS under its snake_case
name (``NceFakeImages`` -> ``nce_fake_images``), so ``--dataset=tfds:nce_fake_images``
finds it like any catalog dataset; ``download_and_prepare`` then "downloads" by calling
``_split_generators``, which here makes the examples (or fails as a dead network would).
"""

import numpy as np
import tensorflow_datasets as tfds


class NceFakeImages(tfds.core.GeneratorBasedBuilder):
    """12 train and 6 test 32x32 RGB images of 3 classes."""

    VERSION = tfds.core.Version("1.0.0")
    IMAGE_SHAPE = (32, 32, 3)
    NUM_CLASSES = 3
    SPLITS = {"train": 12, "test": 6}

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=self.IMAGE_SHAPE),
            "label": tfds.features.ClassLabel(num_classes=self.NUM_CLASSES),
        }))

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(n) for split, n in self.SPLITS.items()}

    def _image(self, rng, i):
        shape = tuple(8 + i if side is None else side for side in self.IMAGE_SHAPE)
        return rng.integers(0, 256, shape, dtype=np.uint8)

    def _generate_examples(self, n):
        rng = np.random.default_rng(n)
        for i in range(n):
            yield i, {"image": self._image(rng, i), "label": i % self.NUM_CLASSES}


class NceFakeVariedImages(NceFakeImages):
    """Images of varying sizes (ImageNet-kind) with a validation split instead of a test split."""

    IMAGE_SHAPE = (None, None, 3)
    NUM_CLASSES = 4
    SPLITS = {"train": 8, "validation": 4}


class NceFakeFailing(NceFakeImages):
    """A download that fails as it does without network."""

    def _split_generators(self, dl_manager):
        raise ConnectionError("Failed to resolve 'example.invalid' (no network)")


class NceFakeMissingModule(NceFakeImages):
    """A download that needs a module TFDS does not declare (tensorflow/datasets#11212)."""

    def _split_generators(self, dl_manager):
        raise ModuleNotFoundError("No module named 'importlib_resources'", name="importlib_resources")


class NceFakeGray(NceFakeImages):
    """Grayscale 28x28 images, as MNIST's."""

    IMAGE_SHAPE = (28, 28, 1)


class NceFakeOneClass(NceFakeImages):
    NUM_CLASSES = 1


class NceFakeTrainOnly(NceFakeImages):
    """Only a train split (as tf_flowers)."""

    SPLITS = {"train": 6}


class NceFakeText(tfds.core.GeneratorBasedBuilder):
    """Text classification: a label but no image."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "text": tfds.features.Text(), "label": tfds.features.ClassLabel(num_classes=2)}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        yield 0, {"text": "a", "label": 0}
