"""absl flags of the tools, one per :class:`TrainConfig` and :class:`SearchConfig` field.

Every tool (``train.py``, ``search.py``, ``nce.py``) defines the same flag set, so one
flagfile drives a search, its final training and the whole pipeline alike.
Defaults come from the dataclasses, so the library and the tools cannot drift apart.
Precedence is the Model Garden's: field defaults < ``--flagfile`` < explicit flags
(absl reads flags left to right; a later value wins).
"""

import dataclasses

from absl import flags

from nce_tf import choices, distribute
from nce_tf.compression.config import HELP as COMPRESS_HELP
from nce_tf.compression.config import TOOL_DEFAULTS as COMPRESS_DEFAULTS
from nce_tf.compression.config import CompressConfig, check_budget_settings, check_model, check_train_config
from nce_tf.data.registry import DATASETS
from nce_tf.search.config import HELP as SEARCH_HELP
from nce_tf.search.config import SearchConfig
from nce_tf.train.config import DEFAULT_MODEL, TrainConfig

HELP = {
    "workdir": "Work directory for checkpoints, logs and results (required; created if missing).",
    "model": f"Zoo model name, or keras:PATH.keras for your own functional / Sequential Keras model (adapted as nce_tf.adapt does); default {DEFAULT_MODEL}, or the model of --arch.",
    "arch": "arch.json whose per-layer widths define the network (e.g. from a search).",
    "dataset": f"Dataset: {' | '.join(d.shown for d in DATASETS.values())}.",
    "tfds_data_dir": "TensorFlow Datasets data directory (cifar10, imagenet2012*, tfds:NAME); empty = TFDS's "
                     "default (~/tensorflow_datasets or $TFDS_DATA_DIR). A dataset missing there is downloaded "
                     "and prepared on first use.",
    "download": "Download and prepare a TFDS dataset missing from --tfds_data_dir on first use (ImageNet: from "
                "the tar files in DIR/downloads/manual); --nodownload refuses instead (offline machines).",
    "synthetic_train_size": "Training images of the synthetic task.",
    "synthetic_test_size": "Test images of the synthetic task.",
    "subset_per_class": "Training images per class of imagenet2012_subset (paper: 50).",
    "w_bits": "Weight bits of quantized layers: 2..8, or 32 for float.",
    "a_bits": "Activation (PACT) bits: 2..8, or 32 for plain ReLU.",
    "weight_quantizer": f"Weight quantizer: {' | '.join(choices.WEIGHT_QUANTIZER_NAMES)}.",
    "activation_quantizer": f"Activation quantizer: {' | '.join(choices.ACTIVATION_QUANTIZER_NAMES)}.",
    "pact_alpha_init": "Initial PACT clip value alpha.",
    "pact_alpha_l2": "L2 coefficient on each PACT alpha (paper: 1e-3).",
    "quantize_first": "Also quantize the first conv (the paper keeps it float).",
    "quantize_last": "Also quantize the classifier (the paper keeps it float).",
    "quantize_shortcut": "Also quantize shortcut convs (the paper keeps them float).",
    "init_from": "Start from a trained network (float or quantized): a .keras file or a finished run's work "
                 "directory of the same model. A training keeps the largest-L1-norm filters in order, extra "
                 "channels fresh (nce_tf/train/float_init.py); a search (search, nce) loads it into the "
                 "super-net, each row's channels ordered by the same L1 score, every candidate's BN from the "
                 "checkpoint's, channels beyond it fresh (nce_tf/adapter/from_trained.py). Empty = from scratch.",
    "pact_init": "PACT clips at the start: fixed (--pact_alpha_init) | stats (per site, the clip with the least "
                 "squared error against ReLU on 4 training batches, for a search on its 1X sub-network; meant "
                 "for --init_from).",
    "teacher": "Distil from this network (a .keras file or a finished run's work directory; same images and "
               "classes, logits out); needs --kd_weight > 0. Its cost is not the student's.",
    "kd_weight": "Weight w of the distillation term: loss = (1 - w) CE + w T^2 KL(teacher/T || student/T); "
                 "in [0, 1], 0 = off.",
    "kd_temperature": "Distillation temperature T (> 0).",
    "epochs": "Training epochs, warm-up included.",
    "warmup_epochs": "Epochs of linear learning-rate warm-up before the cosine decay.",
    "batch_size": "Batch size.",
    "lr": "Peak learning rate of SGD.",
    "momentum": "SGD momentum.",
    "nesterov": "Use Nesterov momentum.",
    "global_clipnorm": "Clip the weight gradients to this global L2 norm before each SGD step (training, a "
                       "search's weight steps and its --supernet_epochs); 0 = no clip. The batch gradient's norm "
                       "on any number of replicas (Keras's own clips each replica's share before the sum).",
    "weight_decay": "Coupled L2 weight decay on conv and dense kernels.",
    "steps_per_epoch": "Steps per epoch; 0 = one pass over the training set.",
    "seed": "Random seed (data order, augmentation, initialisation).",
    "mixed_precision": f"Keras dtype policy of the run: {' | '.join(choices.MIXED_PRECISION)}. Mixed policies compute "
                       "convs and matmuls in 16 bits with float32 variables (quantizers and BN statistics stay "
                       "float32, so the 2-bit grids are float32's; mixed_float16 scales the loss); faster on GPUs "
                       "and TPUs with 16-bit tensor cores, usually slower on a CPU without AMX / AVX512-BF16.",
    "verbose": "Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch.",
    "strategy": "Distribution: default (one device) | mirrored (local GPUs, or --cpu_replicas logical CPUs) | "
                "multi_worker (MultiWorkerMirroredStrategy from TF_CONFIG). Batch sizes are global.",
    "cpu_replicas": "With --strategy=mirrored: run N replicas on N logical CPU devices instead of the GPUs "
                    "(0 = the GPUs).",
    "overwrite": "Start afresh in a work directory that holds a run with other settings (its results and "
                 "checkpoints are replaced); without it such a directory is refused.",
}


_CONFIGS = ((TrainConfig, HELP), (SearchConfig, SEARCH_HELP))


def define_flags(flag_values=flags.FLAGS, compress=False):
    """Defines one absl flag per config field (idempotent per ``flag_values``).

    With ``compress`` (``nce-tf compress``): the :class:`~nce_tf.compression.config.CompressConfig` fields
    too, and a compression's own defaults where they differ (``COMPRESS_DEFAULTS``: a short distilled
    fine-tuning, no budget until one is given).
    """
    configs = (*_CONFIGS, (CompressConfig, COMPRESS_HELP)) if compress else _CONFIGS
    for cls, helps in configs:
        for field in dataclasses.fields(cls):
            if field.name not in flag_values:
                default = COMPRESS_DEFAULTS.get(field.name, field.default) if compress else field.default
                _define(field, helps[field.name], flag_values, default)


def _define(field, help_text, flag_values, default):
    if isinstance(default, bool):
        define = flags.DEFINE_boolean
    elif isinstance(default, int):
        define = flags.DEFINE_integer
    elif isinstance(default, float):
        define = flags.DEFINE_float
    else:
        define = flags.DEFINE_string
    define(field.name, default, help_text, flag_values=flag_values)


def config_from_flags(flag_values=flags.FLAGS, cls=TrainConfig):
    """A ``TrainConfig`` (or ``SearchConfig`` with ``cls``) holding the parsed flag values.

    Under ``--strategy=multi_worker`` a non-chief worker's ``workdir`` is its own sub-directory
    (:func:`nce_tf.distribute.worker_workdir`), so one command line serves every worker.
    """
    config = cls(**{f.name: flag_values[f.name].value for f in dataclasses.fields(cls)})
    if cls is TrainConfig:
        config = dataclasses.replace(config, workdir=distribute.worker_workdir(config.workdir, config.strategy))
    return config


def search_config_from_flags(flag_values=flags.FLAGS):
    """A :class:`SearchConfig` holding the parsed flag values."""
    return config_from_flags(flag_values, SearchConfig)


def compress_configs_from_flags(flag_values=flags.FLAGS):
    """``nce-tf compress``'s ``(TrainConfig, SearchConfig, CompressConfig)``, validated as a compression
    reads them (:mod:`nce_tf.compression.config`; no TensorFlow)."""
    tcfg = check_train_config(config_from_flags(flag_values))
    scfg = check_budget_settings(search_config_from_flags(flag_values))
    ccfg = config_from_flags(flag_values, CompressConfig).validate()
    return check_model(tcfg, ccfg), scfg, ccfg
