"""nce-tf: Neural Channel Expansion (arXiv 2212.10878) for TensorFlow / Keras 3."""

import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "nce_tf", "__init__.py"), encoding="utf-8") as f:
    VERSION = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)

setup(
    name="nce-tf",
    version=VERSION,
    description="Neural Channel Expansion: channel search for ultra-low uniform-precision "
                "quantization, on TensorFlow / Keras 3",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["nce_tf", "nce_tf.*"]) + ["nce_tf.presets"],
    # The top-level flags/ is the one source of the presets; the wheel holds it as nce_tf/presets/.
    package_dir={"nce_tf.presets": "flags"},
    package_data={"nce_tf.presets": ["*.flags", "*/*.flags"]},
    entry_points={"console_scripts": ["nce-tf = nce_tf.commands:main"]},
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16,<2.22",  # 2.16 is the first with Keras 3 as tf's Keras; 2.21 is tested
        "keras>=3.3",
        "tensorflow-datasets>=4.9",
        "importlib_resources",  # TFDS downloads need it but do not declare it (tensorflow/datasets#11212)
        "tensorboard",
        "matplotlib",
        "absl-py>=1.0",
        "numpy",
        "ai-edge-litert",  # runs and validates the exported TFLite model
    ],
    extras_require={
        "test": ["pytest>=9", "pytest-xdist>=3", "ai-edge-litert"],
        # The side-by-side baseline only: tfmot works with Keras 2 (tf_keras) models, in its own process.
        "tfmot": ["tensorflow-model-optimization>=0.8", "tf-keras"],
    },
    license="Apache-2.0",
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
