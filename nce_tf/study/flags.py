"""absl flags of ``tools/study.py``: the tools' shared run flags plus one per :class:`StudyConfig` field.

A study flagfile (``flags/study/``) holds both: the runs' settings (model, data, bits, schedules)
and the study's (methods, searches, trainings, seeds, jobs).
"""

from absl import flags

from nce_tf.cli import config_flags
from nce_tf.study.config import HELP, StudyConfig

_DEFAULT = StudyConfig()


def define_flags(flag_values=flags.FLAGS):
    """Defines the run flags and the study flags (idempotent per ``flag_values``)."""
    config_flags.define_flags(flag_values)
    if "methods" in flag_values:
        return
    flags.DEFINE_list("methods", list(_DEFAULT.methods), HELP["methods"], flag_values=flag_values)
    for name in ("searches", "trainings", "search_seed", "train_seed", "jobs", "resamples"):
        flags.DEFINE_integer(name, getattr(_DEFAULT, name), HELP[name], flag_values=flag_values)
    for name in ("tas_width_ratios", "reference"):
        flags.DEFINE_string(name, getattr(_DEFAULT, name), HELP[name], flag_values=flag_values)
    flags.DEFINE_float("level", _DEFAULT.level, HELP["level"], flag_values=flag_values)


def study_config_from_flags(flag_values=flags.FLAGS):
    """The :class:`StudyConfig` of the parsed flags (``workdir`` is the shared ``--workdir``)."""
    return StudyConfig(
        workdir=flag_values.workdir, methods=tuple(flag_values.methods), searches=flag_values.searches,
        trainings=flag_values.trainings, search_seed=flag_values.search_seed, train_seed=flag_values.train_seed,
        jobs=flag_values.jobs, tas_width_ratios=flag_values.tas_width_ratios, reference=flag_values.reference,
        level=flag_values.level, resamples=flag_values.resamples)
