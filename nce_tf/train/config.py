"""``TrainConfig``: every setting of a training run, validated without importing TensorFlow.

The command-line tool maps its absl flags one to one onto these fields (layered as in the
TF Model Garden: field defaults, then a ``--flagfile``, then explicit flags), validates
them here before any heavy import, and saves the resolved config in the work directory.
Library users build a ``TrainConfig`` directly.

Example:

>>> from nce_tf.train import TrainConfig
>>> TrainConfig(workdir="runs/x", model="resnet20", w_bits=2, a_bits=2).validate().quant_name
'W2A2'
"""

import dataclasses
import os

from nce_tf import choices, distribute
from nce_tf.data.registry import check_dataset_name
from nce_tf.errors import UsageError
from nce_tf.models import QuantPolicy

DEFAULT_MODEL = "resnet20"
@dataclasses.dataclass
class TrainConfig:
    """Settings of one (QAT) training run; see ``tools/train.py --help`` for each field."""

    workdir: str = ""
    model: str = ""  # empty: the model of ``arch``, else DEFAULT_MODEL
    arch: str = ""
    dataset: str = "synthetic"
    tfds_data_dir: str = ""
    download: bool = True
    synthetic_train_size: int = 2048
    synthetic_test_size: int = 512
    subset_per_class: int = 50
    w_bits: int = 32
    a_bits: int = 32
    weight_quantizer: str = "sawb"
    activation_quantizer: str = "pact"
    pact_alpha_init: float = 4.0
    pact_alpha_l2: float = 1e-3
    quantize_first: bool = False
    quantize_last: bool = False
    quantize_shortcut: bool = False
    init_from: str = ""
    pact_init: str = "fixed"
    teacher: str = ""
    kd_weight: float = 0.0
    kd_temperature: float = 4.0
    epochs: int = 300
    warmup_epochs: int = 5
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    global_clipnorm: float = 0.0
    weight_decay: float = 5e-4
    steps_per_epoch: int = 0
    seed: int = 0
    mixed_precision: str = "float32"
    verbose: int = 2
    strategy: str = "default"
    cpu_replicas: int = 0
    overwrite: bool = False

    @property
    def quant_name(self):
        return f"W{self.w_bits}A{self.a_bits}"

    def policy(self):
        """The :class:`nce_tf.models.QuantPolicy` these settings describe."""
        return QuantPolicy(
            w_bits=self.w_bits, a_bits=self.a_bits, weight_quantizer=self.weight_quantizer,
            activation_quantizer=self.activation_quantizer, pact_alpha_init=self.pact_alpha_init,
            pact_alpha_l2=self.pact_alpha_l2, quantize_first=self.quantize_first,
            quantize_last=self.quantize_last, quantize_shortcut=self.quantize_shortcut,
        )

    def validate(self):
        """Checks every field; raises a one-line :class:`UsageError`; returns ``self``."""
        def need(ok, field, allowed):
            if not ok:
                raise UsageError(f"Invalid {field}. Received: {field}={getattr(self, field)!r}. Allowed: {allowed}.")

        from nce_tf import sources  # no TensorFlow import: the zoo registry is plain Python

        if self.model:
            sources.get_spec(self.model)
        check_dataset_name(self.dataset)
        choices.check_bits(self.w_bits, "w_bits")
        choices.check_bits(self.a_bits, "a_bits")
        choices.check_choice(self.weight_quantizer, "weight_quantizer", choices.WEIGHT_QUANTIZER_NAMES)
        choices.check_choice(self.activation_quantizer, "activation_quantizer",
                             choices.ACTIVATION_QUANTIZER_NAMES)
        need(self.pact_alpha_init > 0, "pact_alpha_init", "> 0")
        need(self.pact_alpha_l2 >= 0, "pact_alpha_l2", ">= 0")
        choices.check_choice(self.pact_init, "pact_init", PACT_INITS)
        check_distillation(self.kd_weight, self.kd_temperature)
        if bool(self.teacher) != (self.kd_weight > 0):
            raise UsageError("Distillation needs both a teacher and a weight. Received: "
                             f"teacher={self.teacher!r}, kd_weight={self.kd_weight!r}. Allowed: --teacher=PATH "
                             "with 0 < kd_weight <= 1, or neither.")
        need(self.synthetic_train_size >= 10, "synthetic_train_size", ">= 10")
        need(self.synthetic_test_size >= 10, "synthetic_test_size", ">= 10")
        need(self.subset_per_class >= 1, "subset_per_class", ">= 1")
        need(self.epochs >= 1, "epochs", ">= 1")
        need(0 <= self.warmup_epochs < self.epochs, "warmup_epochs", f"0 <= warmup_epochs < epochs ({self.epochs})")
        need(self.batch_size >= 1, "batch_size", ">= 1")
        need(0 < self.lr <= 10, "lr", "0 < lr <= 10")
        need(0 <= self.momentum < 1, "momentum", "0 <= momentum < 1")
        need(self.global_clipnorm >= 0, "global_clipnorm", ">= 0 (0 = no clip)")
        need(0 <= self.weight_decay < 1, "weight_decay", "0 <= weight_decay < 1")
        need(self.steps_per_epoch >= 0, "steps_per_epoch", ">= 0 (0 = one pass over the data)")
        choices.check_mixed_precision(self.mixed_precision)
        need(self.verbose in (0, 1, 2), "verbose", "0, 1 or 2")

        distribute.check(self.strategy, self.cpu_replicas)
        if not self.workdir:
            raise UsageError("A work directory is required. Received: workdir=''. Pass --workdir=DIR.")
        return self

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_settings(cls, settings, **runtime):
        """The config a work directory's ``config.json`` records (:meth:`run_settings` plus what the
        trainer adds); keys that are not fields are ignored, missing fields take their defaults.

        Args:
            settings: the parsed ``config.json``.
            **runtime: fields the settings leave out (``workdir``, ``strategy``, ...).

        Example:

        >>> TrainConfig.from_settings({"dataset": "synthetic", "seed": 3, "widths": [16]}).seed
        3
        """
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in settings.items() if k in names and k not in runtime}, **runtime)

    def run_settings(self):
        """The settings that define the run's result: what a re-run must match to resume it.

        How the run is executed (:data:`RUNTIME_FIELDS`: where, on how many devices, how
        verbosely, whether to overwrite) is left out, so a run can resume on other hardware.
        The float-initialisation and distillation settings (:data:`FINAL_TRAINING_FIELDS`) are
        left out while they are off (no ``init_from``, ``pact_init="fixed"``, no ``teacher``), and so
        are the fields of :data:`LATER_FIELDS` at their defaults, so a run without them records what it
        recorded before they existed (its work directory still resumes).
        """
        off = {"init_from": not self.init_from, "pact_init": self.pact_init == "fixed",
               "teacher": not self.teacher, "kd_weight": not self.teacher, "kd_temperature": not self.teacher,
               **{k: getattr(self, k) == default for k, default in LATER_FIELDS.items()}}
        return {k: v for k, v in self.to_dict().items() if k not in RUNTIME_FIELDS and not off.get(k, False)}


# Fields added after runs were recorded, with the default that keeps the earlier behaviour: left out of
# run_settings at that default (as SearchConfig's _LATER_FIELDS), so an earlier run's config.json and
# search_config.json are what a re-run records, and it resumes.
LATER_FIELDS = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name in ("mixed_precision", "global_clipnorm")}
# Fields that do not change a run's result (the replica count does not: see nce_tf.distribute;
# whether TFDS may download only decides if a missing dataset is fetched or refused).
RUNTIME_FIELDS = ("workdir", "verbose", "strategy", "cpu_replicas", "overwrite", "download")
# How a training starts and what it learns from besides the labels (nce_tf.train.float_init,
# nce_tf.train.distill); a search ignores the distillation ones.
FINAL_TRAINING_FIELDS = ("init_from", "pact_init", "teacher", "kd_weight", "kd_temperature")
# Of those, where a search's super-net starts (nce_tf.adapter.from_trained): part of a search's settings.
SEARCH_START_FIELDS = ("init_from", "pact_init")
PACT_INITS = ("fixed", "stats")


def check_distillation(kd_weight, kd_temperature):
    """A one-line :class:`UsageError` unless ``0 <= kd_weight <= 1`` and ``kd_temperature > 0``."""
    if isinstance(kd_weight, bool) or not isinstance(kd_weight, (int, float)) or not 0 <= kd_weight <= 1:
        raise UsageError(f"Invalid kd_weight. Received: kd_weight={kd_weight!r}. "
                         "Allowed: 0 <= kd_weight <= 1 (0 = no distillation).")
    if isinstance(kd_temperature, bool) or not isinstance(kd_temperature, (int, float)) or not kd_temperature > 0:
        raise UsageError(f"Invalid kd_temperature. Received: kd_temperature={kd_temperature!r}. Allowed: > 0.")


def model_fingerprint(model):
    """``{"model_sha256": ...}`` for a ``keras:PATH`` model (its file is part of what defines a
    run), ``{}`` for a zoo name."""
    # nce_tf.sources sits above this package: reached lazily, to resolve a model name (WORKSPACE.md)
    from nce_tf.sources import user

    return {"model_sha256": user.fingerprint(model)} if user.is_user_model(model) else {}


def prepare_workdir(workdir):
    """Creates ``workdir`` if needed and checks it is writable; returns its absolute path."""
    path = os.path.abspath(workdir)
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write-test")
        with open(probe, "w", encoding="utf-8") as f:
            f.write("ok")
        os.unlink(probe)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise UsageError(f"Work directory is not writable ({reason}). Received: workdir={workdir!r}") from None
    return path
