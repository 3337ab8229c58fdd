"""A tool's command line read in the test process, by the tools' own flag parser.

Tests that start a tool only to reach the library behind it (bad input found after TensorFlow has
loaded, the reference run beside a killed tool, a refused re-run) read its settings here instead:
a tool subprocess spends ~4.6 s of CPU importing TensorFlow.  Flagfiles and presets are expanded
as the tools expand them (``nce_tf.cli``).
"""

from absl import flags

from nce_tf.cli import config_flags, flagfiles


def _parsed(args, compress=False):
    values = flags.FlagValues()
    config_flags.define_flags(values, compress=compress)
    values(flagfiles.expand(["tool", *args]))
    return values


def train_config(args):
    """The validated ``TrainConfig`` that ``tools/train.py`` runs for ``args`` (flags, no program name)."""
    return config_flags.config_from_flags(_parsed(args)).validate()


def search_configs(args):
    """The validated ``(TrainConfig, SearchConfig)`` that ``tools/search.py`` and ``tools/nce.py`` run for ``args``."""
    values = _parsed(args)
    return config_flags.config_from_flags(values).validate(), config_flags.search_config_from_flags(values).validate()


def compress_configs(args):
    """The validated ``(TrainConfig, SearchConfig, CompressConfig)`` that ``nce-tf compress`` runs for ``args``."""
    return config_flags.compress_configs_from_flags(_parsed(args, compress=True))
