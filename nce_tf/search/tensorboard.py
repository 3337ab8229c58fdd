"""TensorBoard logging of a search: what the architecture parameters do, epoch by epoch.

``SearchTensorBoard(log_dir)`` writes, after every epoch (``tensorboard --logdir DIR/tensorboard``):

- scalars ``search/<metric>``: the step's losses and accuracies (weight half and architecture half),
  the cost loss, tau;
- scalars ``cost/expected_<unit>``, ``cost/argmax_<unit>``, ``cost/target_<unit>`` for every unit the
  budget has an entry for (MACs and params; memory and BOPs when budgeted: :mod:`nce_tf.search.units`);
- scalars ``candidates/<layer>`` (live candidate count per layer) and ``candidates/expanded_layers``;
- histograms ``alpha/<layer>``: the layer's softmax(alpha) over its live candidates, as a
  distribution of candidate widths weighted by probability;
- image ``alpha/heatmap``: softmax(alpha) of every layer (rows) over the 16 candidate slots
  (columns), brighter = more probable;
- given the run's :class:`~nce_tf.jobs.search_log.SearchLog` (``search_log=``), the arch steps'
  instruments of its latest record: ``diagnostics/subnet_1x_accuracy``,
  ``diagnostics/cost_<unit>_down`` and ``_up`` (fractions of the steps each cost term pushed),
  ``grad_norm/<layer>/ce`` and ``/cost`` (mean L2 norm of each part of alpha's gradient) and
  ``pact/<site>`` (the PACT clips).

Example::

    log = SearchLog(expansion, "runs/s/search_log.jsonl", total_epochs=30)
    net.fit(data, epochs=30, callbacks=[TauSchedule(30), expansion, log,
                                        SearchTensorBoard("runs/s/tensorboard/search", search_log=log)])
"""

import keras
import numpy as np
import tensorflow as tf

from nce_tf.search.methods import method_for


def heatmap_image(probs):
    """``[1, L * 8, 16 * 8, 1]`` uint8 image of a ``[L, 16]`` probability table (8x8 pixels a cell)."""
    probs = np.asarray(probs, "float32")
    scaled = probs / max(float(probs.max()), 1e-12)
    cells = np.kron(scaled, np.ones((8, 8), "float32"))
    return (cells * 255).astype("uint8")[None, :, :, None]


class SearchTensorBoard(keras.callbacks.Callback):
    """Writes the search's scalars, alpha histograms and the alpha heat-map every epoch (see the module doc).

    Args:
        log_dir: directory of the event files.
        search_log: ``None`` or the run's :class:`~nce_tf.jobs.search_log.SearchLog`, placed before
            this callback: its latest record's instruments are written too.
    """

    def __init__(self, log_dir, search_log=None):
        super().__init__()
        self.log_dir, self.search_log = log_dir, search_log
        self._writer = None

    def _w(self):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        return self._writer

    def on_epoch_end(self, epoch, logs=None):
        net = self.model
        probs = net.probs().numpy()
        k = net.num_candidates.numpy()
        cost = {name: float(v) for name, v in net.cost_terms().items()}
        names = [r.name for r in net.space.rows]
        with self._w().as_default(step=epoch + 1):
            for name, value in (logs or {}).items():
                tf.summary.scalar(f"search/{name}", float(value))
            tf.summary.scalar("search/tau", float(net.tau.numpy()))
            for e in net.budget.entries:
                tf.summary.scalar(f"cost/expected_{e.name}", cost[f"expected_{e.name}"])
                tf.summary.scalar(f"cost/argmax_{e.name}", cost[f"argmax_{e.name}"])
                tf.summary.scalar(f"cost/target_{e.name}", float(e.target))
            tf.summary.scalar("candidates/expanded_layers", int((k > 8).sum()) if method_for(net.mode).expands else 0)
            for row, name in enumerate(names):
                tf.summary.scalar(f"candidates/{name}", int(k[row]))
                live = int(k[row])
                widths = net.table_np[row, :live].astype("float32")
                # a probability-weighted sample of widths: the histogram of the layer's alpha distribution
                counts = np.round(probs[row, :live] * 1000).astype("int64")
                tf.summary.histogram(f"alpha/{name}", np.repeat(widths, counts), buckets=live)
            tf.summary.image("alpha/heatmap", heatmap_image(probs))
            record = self.search_log.last if self.search_log is not None else None
            if record is not None and record.get("epoch") == epoch + 1:
                _instruments(record, names)
        self._w().flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()


def _instruments(record, names):
    """The arch steps' instruments of one ``search_log.jsonl`` record as scalars (default writer and step)."""
    if "subnet_1x_accuracy" in record:
        tf.summary.scalar("diagnostics/subnet_1x_accuracy", record["subnet_1x_accuracy"])
    for unit, active in record.get("cost_active", {}).items():
        for direction, fraction in active.items():
            tf.summary.scalar(f"diagnostics/cost_{unit}_{direction}", fraction)
    for part in ("ce", "cost"):
        for name, value in zip(names, record.get(f"alpha_grad_norm_{part}", [])):
            tf.summary.scalar(f"grad_norm/{name}/{part}", value)
    for site, clip in record.get("pact_clips", {}).items():
        tf.summary.scalar(f"pact/{site}", clip)
