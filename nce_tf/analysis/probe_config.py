"""The settings of a width-sensitivity probe (:mod:`nce_tf.analysis.sensitivity`), validated without TensorFlow.

Example:

>>> one_layer_widths([16, 16, 32], row=2, ratio=0.75)
[16, 16, 24]
>>> ProbeConfig(ratios=(0.5, 1.3)).validate()
Traceback (most recent call last):
...
nce_tf.errors.UsageError: Invalid probe ratio. Received: ratio=1.3. Allowed: a multiple of 1/8 in (0, 2], not 1 (e.g. 0.5, 0.75, 1.25, 1.5).
"""

import dataclasses

from nce_tf.errors import UsageError

RATIO_STEP = 1 / 8  # the 2x16 space's grid: a ratio must be j / 8


@dataclasses.dataclass
class ProbeConfig:
    """Settings of one probe.

    Args:
        ratios: the width changes, each a multiple of 1/8 in (0, 2], not 1.
        epochs: epochs of super-net weight training from the trained network (0: none; the
            channels beyond 1X then stay at their initialisation).
        batch_size: images per weight step.
        lr: SGD learning rate of those steps (a fine-tuning: constant, momentum 0.9).
        bn_batches: training batches each sub-network's BN statistics are re-estimated on.
        eval_batch_size: images per evaluation batch (BN re-estimation batches too).
        rows: names of the rows (layers) to probe; empty: every searchable row.
        seed: seed of the super-net's new channels, its pair sampling and data order.
        pact_init: ``checkpoint`` (a quantized checkpoint's clips; a float one keeps the initial
            clip) or ``stats`` (clips from the 1X sub-net's activation statistics).
        global_clipnorm: clip each weight step's gradients to this global norm (0: no clip), as
            ``--global_clipnorm`` does for training and search (networks whose first steps explode).
    """

    ratios: tuple = (0.5, 0.75, 1.25, 1.5)
    epochs: int = 2
    batch_size: int = 64
    lr: float = 0.002
    bn_batches: int = 8
    eval_batch_size: int = 256
    rows: tuple = ()
    seed: int = 0
    pact_init: str = "checkpoint"
    global_clipnorm: float = 0.0

    def key(self):
        """The settings a finished probe is recognised by: every field, but a later field at its
        default (``global_clipnorm`` 0) is left out, so probes made before it existed still match."""
        out = dataclasses.asdict(self)
        if not self.global_clipnorm:
            del out["global_clipnorm"]
        return out

    def validate(self):
        """One-line :class:`UsageError` for a bad field; returns ``self``."""
        for r in self.ratios:
            j = r / RATIO_STEP
            if not (0 < r <= 2 and r != 1 and abs(j - round(j)) < 1e-9):
                raise UsageError(f"Invalid probe ratio. Received: ratio={r!r}. Allowed: a multiple of 1/8 in (0, 2], "
                                 "not 1 (e.g. 0.5, 0.75, 1.25, 1.5).")
        checks = [("epochs", self.epochs >= 0, ">= 0"), ("batch_size", self.batch_size >= 1, ">= 1"),
                  ("lr", 0 < self.lr <= 10, "0 < lr <= 10"), ("bn_batches", self.bn_batches >= 1, ">= 1"),
                  ("eval_batch_size", self.eval_batch_size >= 1, ">= 1"),
                  ("pact_init", self.pact_init in ("checkpoint", "stats"), "checkpoint, stats"),
                  ("global_clipnorm", self.global_clipnorm >= 0, ">= 0 (0: no clip)")]
        for field, ok, allowed in checks:
            if not ok:
                raise UsageError(f"Invalid {field}. Received: {field}={getattr(self, field)!r}. Allowed: {allowed}.")
        return self


def one_layer_widths(widths, row, ratio):
    """``widths`` with row ``row`` at ``ratio`` times its width (rounded half up, at least 1)."""
    out = [int(w) for w in widths]
    out[row] = max(1, int(ratio * out[row] + 0.5))
    return out
