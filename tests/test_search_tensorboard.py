"""The search's TensorBoard events hold the scalars, alpha histograms and the alpha heat-map."""

import glob

import keras
import numpy as np
import tensorflow as tf

from nce_tf.models import QuantPolicy
from nce_tf.search import SuperNet
from nce_tf.search.tensorboard import SearchTensorBoard, heatmap_image
from nce_tf.sources import build_space


def test_heatmap_image_scales_to_the_largest_probability():
    img = heatmap_image(np.array([[0.5, 0.25], [0.0, 0.125]]))
    assert img.shape == (1, 16, 16, 1) and img.dtype == np.uint8
    assert img[0, 0, 0, 0] == 255 and img[0, 0, 8, 0] == 127 and img[0, 8, 0, 0] == 0


def test_search_events_hold_scalars_histograms_and_images(tmp_path):
    net = SuperNet(build_space("resnet8"), policy=QuantPolicy(w_bits=2, a_bits=2), seed=0)
    net.configure_optimizers(keras.optimizers.SGD(0.1), keras.optimizers.Adam(1e-3))
    net.set_arch_updates(True)
    x = np.random.default_rng(0).normal(size=(16, 32, 32, 3)).astype("float32")
    y = np.arange(16) % 10
    half = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    net.fit(tf.data.Dataset.zip((half, half)), epochs=2, verbose=0,
            callbacks=[SearchTensorBoard(str(tmp_path / "tb"))])
    kinds = {}
    for path in glob.glob(str(tmp_path / "tb" / "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                kinds.setdefault(value.metadata.plugin_data.plugin_name, set()).add(value.tag)
    scalars, histograms, images = kinds["scalars"], kinds["histograms"], kinds["images"]
    for tag in ("search/loss", "search/arch_loss", "search/tau", "cost/expected_macs", "cost/argmax_macs",
                "cost/target_macs", "cost/expected_params", "candidates/expanded_layers", "candidates/stem_conv"):
        assert tag in scalars, tag
    assert {f"alpha/{r.name}" for r in net.space.rows} <= histograms
    assert images == {"alpha/heatmap"}
