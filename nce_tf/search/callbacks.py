"""Keras callbacks that drive a :class:`~nce_tf.search.supernet.SuperNet` inside any ``fit``.

The search job behind ``tools/search.py`` runs on these very callbacks; they let a search run
in your own training code on your own ``tf.data`` datasets:

- :class:`TauSchedule`: TAS's per-epoch Gumbel temperature, cosine from ``tau_max`` to ``tau_min``
  over the search epochs (``tau_max`` during a warm-up);
- :class:`ChannelExpansion`: NCE's expansion check after every epoch (and every N steps), its
  steps numbered globally from the epoch, so a fit resumed at an epoch (``initial_epoch``)
  expands where an uninterrupted one does.

Example::

    import tensorflow as tf, keras
    from nce_tf.models import QuantPolicy
    from nce_tf.search import SuperNet
    from nce_tf.sources import build_space
    from nce_tf.search.callbacks import ChannelExpansion, TauSchedule

    net = SuperNet(build_space("resnet20"), QuantPolicy(w_bits=2, a_bits=2), weight_decay=5e-4)
    net.configure_optimizers(keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                             keras.optimizers.Adam(1e-3, beta_1=0.5, beta_2=0.999))
    net.set_arch_updates(True)   # False during a warm-up
    net.fit(tf.data.Dataset.zip((weight_half, arch_half)), epochs=30,
            callbacks=[TauSchedule(30), ChannelExpansion(threshold=0.3)])
"""

import math

import keras

from nce_tf.search.expansion import check_threshold, expand
from nce_tf.search.methods import method_for


def tau_at(epoch, total, tau_max=5.0, tau_min=0.1, first=0):
    """TAS's per-epoch temperature: cosine from ``tau_max`` (epoch ``first``) towards ``tau_min``.

    ``total`` is the number of epochs the cosine spans (the search epochs) and ``first`` the first
    of them (the warm-up length): epochs before it keep ``tau_max``.  The paper's 200 + 600
    schedule thus starts its search at tau 5, not at the 4.28 a cosine over all 800 epochs gives.

    >>> tau_at(5, 10, first=5), round(tau_at(5, 15), 2)
    (5.0, 3.78)
    """
    e = max(epoch - first, 0)
    return tau_min + (tau_max - tau_min) * (1 + math.cos(math.pi * e / max(total, 1))) / 2


class TauSchedule(keras.callbacks.Callback):
    """Sets the super-net's Gumbel temperature at the start of every epoch.

    Args:
        total_epochs: search epochs the cosine spans.
        tau_max, tau_min: temperatures at the first search epoch and approached at the last.
        first_epoch: the first search epoch (the warm-up's length; ``tau_max`` before it).
    """

    def __init__(self, total_epochs, tau_max=5.0, tau_min=0.1, first_epoch=0):
        super().__init__()
        self.total_epochs, self.tau_max, self.tau_min = int(total_epochs), float(tau_max), float(tau_min)
        self.first_epoch = int(first_epoch)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.tau.assign(tau_at(epoch, self.total_epochs, self.tau_max, self.tau_min, self.first_epoch))


class ChannelExpansion(keras.callbacks.Callback):
    """NCE's expansion rule after every epoch (and every ``every_steps`` steps), while alpha trains.

    The per-step checks fall on every ``every_steps``-th step of each epoch, counted from the
    epoch's start.  A check is numbered by its global step, ``epoch * steps_per_epoch + step``
    (1-based; the batches seen so far when ``fit`` does not know the epoch's length), which seeds
    the new weight slices: a fit resumed at an epoch (``initial_epoch``) expands at the same
    steps, with the same fresh weights, as an uninterrupted one.

    Nothing expands after the fit's last step (the last epoch's end, or a per-step check on its last
    batch): a candidate added then would never be searched, yet its copied logit ties the old widest
    candidate's, so the derivation's budget repair could move a row onto weights no step trained
    (until nce-tf 866426b it did: 3 of the study's 8 NCE searches).  A step's check runs once (a
    per-step check on an epoch's last batch is that epoch's check).  The fit refuses a threshold at or
    below a growing row's uniform probability (:func:`~nce_tf.search.expansion.check_threshold`).

    Args:
        threshold: T; a layer expands when its largest candidate's probability exceeds it.
        every_steps: also check every N steps (0 = per epoch only).
        seed: seed of the fresh initialisation of new weight slices.

    Attributes:
        expanded: ``(epoch, [rows])`` of every check that expanded something.

    Example::

        expansion = ChannelExpansion(threshold=0.3, every_steps=50)
        net.fit(data, epochs=30, steps_per_epoch=200, callbacks=[TauSchedule(30), expansion])
        expansion.expanded   # [(epoch, rows), ...]
    """

    def __init__(self, threshold=0.3, every_steps=0, seed=0):
        super().__init__()
        self.threshold, self.every_steps, self.seed = float(threshold), int(every_steps), int(seed)
        self.expanded = []
        self._epoch = self._seen = self._step = 0
        self._checked_step = None

    def rows_expanded_in(self, epoch):
        """The rows expanded during ``epoch``, sorted, each once."""
        return sorted({row for e, rows in self.expanded if e == epoch for row in rows})

    def _check(self):
        if self._checked_step == self._step:
            return
        self._checked_step = self._step
        if method_for(self.model.mode).expands and self.model.arch_updates:
            rows = expand(self.model, self.threshold, seed=self.seed, step=self._step)
            if rows:
                self.expanded.append((self._epoch, rows))

    def _last_epoch(self, epoch):
        epochs = (self.params or {}).get("epochs")
        return epochs is not None and epoch + 1 >= epochs

    def on_train_begin(self, logs=None):
        net = self.model
        if method_for(net.mode).expands:
            check_threshold([row.name for row in net.space.rows], net.num_candidates.numpy(), net.k_caps,
                            self.threshold)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._seen += 1
        steps = (self.params or {}).get("steps")
        self._step = self._epoch * steps + batch + 1 if steps else self._seen
        final = self._last_epoch(self._epoch) and steps is not None and batch + 1 == steps
        if self.every_steps and (batch + 1) % self.every_steps == 0 and not final:
            self._check()

    def on_epoch_end(self, epoch, logs=None):
        if not self._last_epoch(epoch):
            self._check()  # numbered by the epoch's last step
