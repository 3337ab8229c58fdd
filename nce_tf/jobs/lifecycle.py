"""The lifecycle every job shares: strategy, settings check, run state, finite-only checkpoints, resume.

A job (a training run, a search) is split as in the TF Model Garden's task + launcher: the job
(:class:`Job`) supplies what is its own (its inputs, its model and optimizers, the settings that
define its result, its ``fit`` and its result), and :func:`run_job` runs it the one way every job
runs:

0. Keras's global dtype policy is set to the run's ``mixed_precision`` (:func:`nce_tf.mixed_precision.policy_scope`)
   for everything below, and the caller's restored when the run ends, however it ends;
1. the ``tf.distribute`` strategy comes first (``--cpu_replicas`` must configure devices before
   any op runs);
2. ``job.prepare``: every input is checked and the data loaded before anything is written;
3. the global seed (``job.global_seed()``) is set and ``job.build`` creates the trackables (model,
   optimizers) in the strategy's scope, before the work directory is touched (a failing build
   leaves nothing);
4. the work directory's settings file (``config.json`` / ``search_config.json``) decides: absent
   starts afresh, the same settings resume, other settings are refused unless ``--overwrite``
   (which removes only the files the job lists as its own);
5. the run state (a :class:`~nce_tf.jobs.checkpoint.RunState` of the trackables) is restored,
   the per-epoch log cut to the epochs restored, and ``job.fit`` continues from there;
   :meth:`Run.fit` checkpoints every epoch, only from a finite state, and turns a diverged fit
   into one :class:`~nce_tf.errors.UsageError` naming the last good state;
6. ``job.result`` writes and returns what the job made, with ``run.provenance()`` (code, versions,
   times) beside it.

Each sitting's wall and CPU time is counted per phase (``setup``: steps 1-5, ``fit``, ``result``)
by a :class:`~nce_tf.provenance.PhaseClock` and added to what the earlier sittings of the run
recorded in ``Job.times_file``, rewritten at every checkpoint (and when the sitting ends, however
it ends), so a resumed run's times are those of all its sittings and a crash loses at most the
time since the last checkpoint.

Example (a job of your own)::

    class MyJob(Job):
        kind, settings_file, state_directory = "run", "config.json", "backup"

        def settings(self):
            return self.config.run_settings()

        def build(self):
            self.model = make_model()
            return {"model": self.model, "optimizer": self.model.optimizer}

        def fit(self, run):
            # my_stream(first, last): the batches of epochs [first, last), a function of (seed, epoch)
            run.fit(self.model, my_stream, 0, self.config.epochs, steps=100, hint="The loss diverged.")

    run_job(MyJob(config))
"""

import abc
import dataclasses
import os

import keras
import numpy as np

from nce_tf import distribute, mixed_precision, provenance
from nce_tf.errors import UsageError
from nce_tf.io_utils import atomic_write_json, atomic_write_text
from nce_tf.jobs.checkpoint import RunState, all_finite, check_settings, remove_outputs
from nce_tf.train.config import prepare_workdir


class Job(abc.ABC):
    """What one kind of run supplies to :func:`run_job` (the Model Garden's task).

    Attributes:
        kind: the run's name in messages (``"training run"``, ``"search"``).
        settings_file: the work directory's settings file.
        state_directory: where the run state's checkpoints live, relative to the work directory.
        epoch_log: the per-epoch log (one line per epoch after ``epoch_log_header`` lines), cut to
            the restored epochs on resume; ``""`` for none.
        weights_file: also keep the latest finite weights in this ``.weights.h5`` file; ``""`` for none.
        times_file: the per-phase wall and CPU times summed over the run's sittings
            (:class:`~nce_tf.provenance.PhaseClock`), relative to the work directory; list it in ``outputs``.
        outputs: every file the job writes, removed by ``--overwrite``.
        config: the run's :class:`~nce_tf.train.TrainConfig` (workdir, seed, strategy, overwrite).
    """

    kind = "run"
    settings_file = "config.json"
    state_directory = "backup"
    epoch_log = ""
    epoch_log_header = 0
    weights_file = ""
    times_file = "times.json"
    outputs = ()

    def __init__(self, config):
        self.config = config

    def prepare(self, strategy):
        """Checks every input and loads the data; writes nothing."""

    def global_seed(self):
        """The seed of Keras's, numpy's and Python's global generators, set before :meth:`build`
        (after :meth:`prepare`): by default the run's seed."""
        return self.config.seed

    def build(self):
        """Creates the model and optimizers (in the strategy's scope, seeded); returns the trackables
        the run state checkpoints (``{}``: nothing to train)."""
        return {}

    @abc.abstractmethod
    def settings(self):
        """The settings that define the result: a re-run must match them to resume (every job
        defines it: a job class without it cannot be made)."""

    def finished(self, workdir):
        """The result of a run that already finished in ``workdir``, else ``None``."""
        return None

    def fit(self, run):
        """Trains from ``run.start`` (through :meth:`Run.fit`)."""

    def result(self, run):
        """Writes and returns what the job made."""
        return None


class FiniteCheckpoint(keras.callbacks.Callback):
    """Saves the run state after every epoch, only from a finite state (a diverged run keeps its last good one).

    Args:
        state: the :class:`~nce_tf.jobs.checkpoint.RunState`.
        weights_path: also keep the latest weights in this ``.weights.h5`` file (written whole or not at all).
        clock: a :class:`~nce_tf.provenance.PhaseClock` whose times file is rewritten with each checkpoint.
    """

    def __init__(self, state, weights_path=None, clock=None):
        super().__init__()
        self.state, self.weights_path, self.clock = state, weights_path, clock
        self.last_good = None
        self.saved = None  # the model whose weights are kept, when fit runs a wrapper of it

    def on_epoch_end(self, epoch, logs=None):
        if not np.isfinite((logs or {}).get("loss", 0.0)) or not all_finite(self.model.weights):
            return
        self.state.save(epoch + 1)
        if self.weights_path:
            tmp = self.weights_path.replace(".weights.h5", ".tmp.weights.h5")
            (self.saved or self.model).save_weights(tmp)
            os.replace(tmp, self.weights_path)
        self.last_good = epoch + 1
        if self.clock is not None:
            self.clock.flush()


class _Diverged(Exception):
    """Raised by :class:`DivergenceGuard` out of ``fit``; :meth:`Run.fit` turns it into the job's one-line error."""


class DivergenceGuard(keras.callbacks.Callback):
    """Ends ``fit`` at the end of an epoch whose loss or weights are not finite, before the callbacks
    after it see that state.

    ``TerminateOnNaN`` stops after the batch, but Keras still calls every callback's ``on_epoch_end``;
    the job's own callbacks (a search's TensorBoard histograms of alpha's probabilities, its expansion
    check) then read NaNs and fail on their own (a diverged MobileNetV2 search ended in ``ValueError:
    negative dimensions`` inside ``np.repeat``), or an architecture parameter turns NaN while the loss
    is still finite.  Placed first, this callback checks the watched model's weights and raises.
    """

    def __init__(self, watched):
        super().__init__()
        self.watched = watched

    def on_epoch_end(self, epoch, logs=None):
        if not np.isfinite((logs or {}).get("loss", 0.0)) or not all_finite(self.watched.weights):
            raise _Diverged(epoch)


@dataclasses.dataclass
class Run:
    """One sitting of a job: where it writes, what it restored, and its checkpointed ``fit``.

    Attributes:
        workdir: the absolute work directory.
        strategy: the ``tf.distribute.Strategy`` the job was built in.
        state: the :class:`~nce_tf.jobs.checkpoint.RunState` (``None`` for a job with nothing to train).
        start: the epochs already done (restored from the last checkpoint; 0 afresh).
        resuming: the work directory held this run's settings.
        weights_path: where the finite-only checkpoint also keeps the latest weights (``Job.weights_file``).
        clock: this sitting's :class:`~nce_tf.provenance.PhaseClock` (``None``: times not kept).
    """

    workdir: str
    strategy: object
    state: object = None
    start: int = 0
    resuming: bool = False
    weights_path: str = None
    clock: object = None
    _checkpoint: FiniteCheckpoint = dataclasses.field(default=None, repr=False)

    def fit(self, model, stream, first, last, *, steps, hint, callbacks=(), verbose=0, trainer=None):
        """``model.fit`` over epochs ``[max(first, start), last)``, checkpointed, failing on divergence.

        Args:
            model: the ``keras.Model`` to fit (its state is the run state's).
            stream: ``stream(first, last)`` gives the batches of those epochs (an epoch's batches
                must depend on the seed and the epoch alone, so a resumed run sees what an
                uninterrupted one sees).
            first, last: the epochs of this fit (a job may fit in phases).
            steps: steps per epoch.
            hint: the divergence error's first sentence, naming the settings to change.
            callbacks: the job's callbacks; ``TerminateOnNaN`` and the finite-only checkpoint
                follow them, so the checkpoint is the last thing an epoch writes.
            verbose: ``fit``'s verbosity.
            trainer: a model whose ``fit`` trains ``model`` (a
                :class:`~nce_tf.train.distill.Distiller` around it); ``model``'s weights are the ones kept.

        Returns:
            The ``History.history`` dict (empty when the epochs were done already).
        """
        begin = max(first, self.start)
        if begin >= last:
            return {}
        if self._checkpoint is None:
            self._checkpoint = FiniteCheckpoint(self.state, self.weights_path, self.clock)
        self._checkpoint.saved = model
        fitted = trainer or model
        try:
            history = fitted.fit(stream(begin, last), epochs=last, initial_epoch=begin, steps_per_epoch=steps,
                                 callbacks=[DivergenceGuard(model), *callbacks, keras.callbacks.TerminateOnNaN(),
                                            self._checkpoint], verbose=verbose, shuffle=False).history
        except _Diverged:
            history = None
        if (history is None or fitted.stop_training or not np.isfinite(history.get("loss", [0.0])[-1])
                or not all_finite(model.weights)):
            kept = self._checkpoint.last_good or self.start
            raise UsageError(f"{hint} " + (f"The last good state (epoch {kept}) is kept in {self.state.directory}."
                                           if kept else "No epoch finished, so no checkpoint was written."))
        return history

    def provenance(self):
        """The result's ``provenance`` entry (:func:`nce_tf.provenance.record`): code, versions and
        the times of every sitting so far."""
        return provenance.record(self.clock)


def keep_epochs(path, epochs, header=0):
    """Cuts a per-epoch log to its first ``epochs`` lines after ``header`` (a resumed run re-logs the rest)."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    atomic_write_text(path, "".join(lines[: header + epochs]) if epochs else "")


def run_job(job, strategy=None):
    """Runs ``job`` through the shared lifecycle (see the module doc); returns ``job.result``'s value.

    Args:
        job: a :class:`Job`.
        strategy: a ``tf.distribute.Strategy``; default: the one ``job.config.strategy`` names
            (:func:`nce_tf.distribute.get_strategy`).
    """
    with mixed_precision.policy_scope(job.config.mixed_precision):
        return _run_job(job, strategy)


def _run_job(job, strategy):
    config = job.config
    clock = provenance.PhaseClock()  # the sitting starts: its code state is taken now
    clock.phase("setup")
    strategy = strategy or distribute.get_strategy(config.strategy, config.cpu_replicas)
    job.prepare(strategy)
    keras.utils.set_random_seed(job.global_seed())
    # Model and optimizers live in the strategy scope and are built before fit, so the checkpoint
    # can restore their slots and step counters (tf_facts.md).
    with strategy.scope():
        trackables = job.build()
    workdir = prepare_workdir(config.workdir)
    settings_path = os.path.join(workdir, job.settings_file)
    settings = job.settings()
    resuming = check_settings(settings_path, settings, config.overwrite, job.kind)
    done = job.finished(workdir) if resuming else None
    if done is not None:
        return done
    if not resuming and config.overwrite and os.path.exists(settings_path):
        remove_outputs(workdir, job.outputs)  # only a run nce-tf wrote (it has a settings file)
    state = RunState(os.path.join(workdir, job.state_directory), **trackables) if trackables else None
    start = state.restore()[0] if resuming and state else 0  # a bad checkpoint fails here, before any write
    if not resuming:
        atomic_write_json(settings_path, settings)
    times_path = os.path.join(workdir, job.times_file)
    os.makedirs(os.path.dirname(times_path), exist_ok=True)
    clock.attach(times_path, resume=resuming)
    if state and job.epoch_log:
        keep_epochs(os.path.join(workdir, job.epoch_log), start, job.epoch_log_header)
    weights_path = os.path.join(workdir, job.weights_file) if job.weights_file else None
    if weights_path:
        os.makedirs(os.path.dirname(weights_path), exist_ok=True)
    run = Run(workdir, strategy, state, start, resuming, weights_path, clock)
    try:
        clock.phase("fit")
        job.fit(run)
        clock.phase("result")
        return job.result(run)
    finally:
        clock.flush()  # a sitting that fails or is interrupted keeps its time too
