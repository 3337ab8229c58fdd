"""``SearchConfig``: the settings of a channel search, validated without importing TensorFlow.

The search tools (``tools/search.py``, ``tools/nce.py``) read these fields from absl flags
next to the training fields of :class:`nce_tf.train.TrainConfig` (one flag set for every
tool, so one flagfile drives search, derivation and final training).  Defaults are the
paper's CIFAR-10 settings where the paper gives them (T = 0.3, coefficient 2, 200 warm-up
+ 600 search epochs) and TAS's published code elsewhere (Adam 1e-3, betas 0.5/0.999,
weight decay 1e-3; tau 5 -> 0.1 cosine over the search epochs; FLOPs band 0.05 below the target)
and the paper's own results elsewhere (the band reaches 0.06 above the FLOPs target; PARAMs are an
upper bound only: see :mod:`nce_tf.search.units`, whose unit classes also check their fields here).

Example:

>>> from nce_tf.search.config import SearchConfig
>>> SearchConfig(mode="nce", threshold=0.3).validate().mode
'nce'
"""

import dataclasses
import math
import re

from nce_tf.choices import FLOAT_BITS
from nce_tf.data.registry import check_dataset_name
from nce_tf.errors import UsageError
from nce_tf.search.candidates import parse_ratios
from nce_tf.search.methods import METHODS, help_text
from nce_tf.search.units import UNITS

TAS_SPACES = ("1x8", "2x8", "2x16")
EXPANSION_INITS = ("fresh", "warm")
SAWB_SCOPES = ("pair", "candidate")
PAIR_MERGES = ("cwi", "pad")
ARCH_BALANCES = ("shared", "split")

HELP = {
    "mode": help_text(),  # the registered methods (nce_tf/search/methods.py)
    "tas_space": "Space of --mode=tas: 1x8 (8 candidates up to 1X), 2x8 (8 candidates up to 2X), "
                 "2x16 (16 candidates up to 2X).",
    "threshold": "NCE channel-preference threshold T: a layer expands when its largest candidate's "
                 "probability exceeds T (paper: 0.3 CIFAR-10, 0.19 ImageNet). Allowed: (1/8, 1).",
    "expand_every_steps": "Also check expansion every N search steps (0 = once per search epoch only).",
    "expansion_init": "How an expansion starts its new candidate: fresh (its BN at gamma 1, beta 0, mean 0, var 1 on "
                      "every channel, as the design notes reconstruct the paper) or warm (an ablation: its first C_K "
                      "channels take the previous widest candidate's BN and optimizer state, its new channels leave "
                      "the layer at exactly zero, so it first computes what that candidate did).",
    "max_width_ratio": "The widest a layer may grow by expansion, as a multiple of its width (2: the paper's 2X; "
                       "1.125: one expansion step of n/8). Allowed: [1, 2].",
    "lane": "Round candidate widths up to a multiple of this many channels (MAC-array lanes; 1 = off).",
    "flops_ratio": "FLOPs (MACs) target as a fraction of the ORIGINAL 1X network (0 = no FLOPs constraint).",
    "params_ratio": "PARAMs upper bound as a fraction of the original network (0 = no PARAMs constraint); "
                    "PARAMs are pushed down above it, never up.",
    "tolerance": "How far below the FLOPs target the accepted band reaches, as a fraction of the original "
                 "network's FLOPs (TAS: 0.05). PARAMs have no lower limit.",
    "tolerance_above": "How far above the FLOPs target the accepted band reaches, as a fraction of the original "
                       "network's FLOPs (TAS: 0; the paper's results reach 1.056x, so 0.06 by default).",
    "width_ratios": "Width grid up to 1X: nce (j/8, j = 1..8), tas (TAS's 0.3, 0.4, ..., 1.0, truncated as TAS "
                    "does) or a comma list of increasing ratios ending at 1. NCE's expansion appends "
                    "(1 + i/8) n beyond it.",
    "sawb_scope": "What a searchable layer's weight quantizer (SAWB's clip, DoReFa's max) sees: pair (one scale over "
                  "the wider candidate's slice, shared by the pair: TAS's single conv) or candidate (an ablation: each "
                  "candidate quantizes its own slice W[..., :C_j], as its derived network does; one conv over both "
                  "quantized slices, up to 2x that layer's conv work).",
    "pair_merge": "How a searchable layer aligns its pair of candidates to the wider one's channels before mixing "
                  "them: cwi (TAS: the narrower candidate's channels interpolated over all of them) or pad (an "
                  "ablation: its channels kept where they are, zeros beyond, as its derived network computes).",
    "arch_steps": "Architecture (alpha) steps per weight step, each on its own architecture batch "
                  "(1 = TAS; more give alpha more Adam steps in a short search).",
    "lambda_flops": "Coefficient of the FLOPs constraint loss (paper: 2 CIFAR, 1.5 ImageNet).",
    "lambda_params": "Coefficient of the PARAMs constraint loss.",
    "memory_bytes": "Weight-memory budget in bytes, each layer at its deployed bits (see --float_bits; BN and "
                    "biases 32 bits), e.g. 65536 or 64Ki (suffixes k, M, G, Ki, Mi, Gi); empty = none.",
    "memory_ratio": "Weight-memory budget as a fraction of the original network's (instead of --memory_bytes); "
                    "empty = none.",
    "bops": "BOPs budget: sum over layers of MACs x weight bits x input-activation bits, e.g. 80M; empty = none.",
    "bops_ratio": "BOPs budget as a fraction of the original network's (instead of --bops); empty = none.",
    "memory_tolerance": "How far below the memory budget its band reaches, as a fraction of the budget "
                        "(1 = a ceiling only).",
    "bops_tolerance": "How far below the BOPs budget its band reaches, as a fraction of the budget "
                      "(1 = a ceiling only).",
    "lambda_memory": "Coefficient of the memory constraint loss.",
    "lambda_bops": "Coefficient of the BOPs constraint loss.",
    "float_bits": "Bits that memory and BOPs count for what the Keras model keeps at 32 bits (the first conv, "
                  "classifier and shortcut kernels; the image and activations off the PACT grid): 8 = as the "
                  "int8 TFLite file deploys them, 16, or 32 = as the Keras model holds them.",
    "enforce_budget": "If the final argmax architecture is outside the budget band, move it in with the "
                      "least loss of probability (the raw argmax is kept in arch.json too).",
    "search_dataset": "Dataset of the search if it differs from --dataset (paper ImageNet: "
                      "imagenet2012_subset, 50 images per class); empty = --dataset.",
    "search_epochs": "Bi-level search epochs after the warm-up (paper: 600 CIFAR-10, 110 ImageNet subset).",
    "search_warmup_epochs": "Super-net warm-up epochs with alpha frozen (paper: 200 CIFAR-10, 40 ImageNet).",
    "search_batch_size": "Batch size of each half (weights, architecture) in a search step.",
    "search_steps_per_epoch": "Search steps per epoch; 0 = one pass over the weight half.",
    "search_lr": "Peak SGD learning rate of the weight step (cosine over warm-up + search).",
    "arch_lr": "Adam learning rate of the architecture step.",
    "arch_beta1": "Adam beta_1 of the architecture step.",
    "arch_beta2": "Adam beta_2 of the architecture step.",
    "arch_weight_decay": "Coupled L2 weight decay on alpha (TAS: 1e-3).",
    "arch_balance": "How the architecture step's Adam sees alpha's gradient: shared (TAS: one Adam on the sum of "
                    "the cross-entropy part, the cost part and the decay) or split (one Adam per part, CE and "
                    "cost + decay, their updates summed: a cost burst no longer shrinks the CE part's steps "
                    "through a shared second moment).",
    "supernet_epochs": "Epochs of single-path weight training before the warm-up (each step one sub-network, each "
                       "row at 1X with probability 1/2, else at another live candidate; nce_tf/search/single_path.py). "
                       "0 = none (TAS, the paper). For a search from a trained network (--init_from), whose "
                       "narrower candidates do not work yet.",
    "supernet_lr": "SGD learning rate of the --supernet_epochs steps (a fine-tuning rate: the 1X sub-network is "
                   "trained).",
    "tau_max": "Gumbel-softmax temperature during the warm-up and at the first search epoch.",
    "tau_min": "Gumbel-softmax temperature approached at the last search epoch (cosine over the search epochs).",
    "split_seed": "Seed of the per-class 50/50 weight/architecture split of the training set (TAS: 111).",
}


@dataclasses.dataclass
class SearchConfig:
    """Settings of one channel search; see :data:`HELP` (and ``--help``) for each field."""

    mode: str = "nce"
    tas_space: str = "1x8"
    threshold: float = 0.3
    expand_every_steps: int = 0
    expansion_init: str = "fresh"
    max_width_ratio: float = 2.0
    lane: int = 1
    flops_ratio: float = 1.0
    params_ratio: float = 1.0
    tolerance: float = 0.05
    tolerance_above: float = 0.06
    width_ratios: str = "nce"
    sawb_scope: str = "pair"
    pair_merge: str = "cwi"
    arch_steps: int = 1
    lambda_flops: float = 2.0
    lambda_params: float = 2.0
    memory_bytes: str = ""
    memory_ratio: str = ""
    bops: str = ""
    bops_ratio: str = ""
    memory_tolerance: float = 0.05
    bops_tolerance: float = 0.05
    lambda_memory: float = 2.0
    lambda_bops: float = 2.0
    float_bits: int = 8
    enforce_budget: bool = True
    search_dataset: str = ""
    search_epochs: int = 600
    search_warmup_epochs: int = 200
    search_batch_size: int = 256
    search_steps_per_epoch: int = 0
    search_lr: float = 0.1
    arch_lr: float = 1e-3
    arch_beta1: float = 0.5
    arch_beta2: float = 0.999
    arch_weight_decay: float = 1e-3
    arch_balance: str = "shared"
    supernet_epochs: int = 0
    supernet_lr: float = 0.002
    tau_max: float = 5.0
    tau_min: float = 0.1
    split_seed: int = 111

    @property
    def total_epochs(self):
        return self.search_warmup_epochs + self.search_epochs

    def validate(self):
        """Checks every field; raises a one-line :class:`UsageError`; returns ``self``."""

        def need(ok, field, allowed):
            if not ok:
                raise UsageError(f"Invalid {field}. Received: {field}={getattr(self, field)!r}. Allowed: {allowed}.")

        need(self.mode in METHODS, "mode", ", ".join(METHODS))
        if self.search_dataset:
            check_dataset_name(self.search_dataset, "search_dataset")
        need(self.tas_space in TAS_SPACES, "tas_space", ", ".join(TAS_SPACES))
        need(0.125 < self.threshold < 1, "threshold", "1/8 < threshold < 1 (above the uniform probability)")
        need(self.expand_every_steps >= 0, "expand_every_steps", ">= 0")
        need(self.expansion_init in EXPANSION_INITS, "expansion_init", ", ".join(EXPANSION_INITS))
        need(1 <= self.max_width_ratio <= 2, "max_width_ratio", "a number in [1, 2]")
        need(self.sawb_scope in SAWB_SCOPES, "sawb_scope", ", ".join(SAWB_SCOPES))
        need(self.pair_merge in PAIR_MERGES, "pair_merge", ", ".join(PAIR_MERGES))
        need(1 <= self.lane <= 256, "lane", "an integer in [1, 256]")
        for unit in UNITS.values():  # every budget unit checks its own fields
            unit.check_config(self, need)
        need(1 <= self.arch_steps <= 64, "arch_steps", "an integer in [1, 64]")

        parse_ratios(self.width_ratios)
        need(self.float_bits in FLOAT_BITS, "float_bits", ", ".join(map(str, FLOAT_BITS)))
        need(self.search_epochs >= 1, "search_epochs", ">= 1")
        need(self.search_warmup_epochs >= 0, "search_warmup_epochs", ">= 0")
        need(self.search_batch_size >= 1, "search_batch_size", ">= 1")
        need(self.search_steps_per_epoch >= 0, "search_steps_per_epoch", ">= 0 (0 = one pass over the weight half)")
        need(0 < self.search_lr <= 10, "search_lr", "0 < search_lr <= 10")
        need(0 < self.arch_lr <= 1, "arch_lr", "0 < arch_lr <= 1")
        need(0 <= self.arch_beta1 < 1, "arch_beta1", "0 <= arch_beta1 < 1")
        need(0 <= self.arch_beta2 < 1, "arch_beta2", "0 <= arch_beta2 < 1")
        need(0 <= self.arch_weight_decay < 1, "arch_weight_decay", "0 <= arch_weight_decay < 1")
        need(self.arch_balance in ARCH_BALANCES, "arch_balance", ", ".join(ARCH_BALANCES))
        need(self.supernet_epochs >= 0, "supernet_epochs", ">= 0")
        need(0 < self.supernet_lr <= 10, "supernet_lr", "0 < supernet_lr <= 10")
        need(0 < self.tau_min <= self.tau_max <= 100, "tau_min", f"0 < tau_min <= tau_max ({self.tau_max})")
        return self

    def budget_value(self, field):
        """The number a budget field (``memory_bytes``, ``memory_ratio``, ``bops``, ``bops_ratio``)
        holds, ``None`` when it is empty; a one-line :class:`UsageError` unless it is positive."""
        text = getattr(self, field).strip()
        if not text:
            return None
        ratio = field.endswith("_ratio")
        match = re.fullmatch(r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKMGT]i?)?(B?)", text)
        unitless = match is not None and not (ratio and (match.group(2) or match.group(3)))
        value = float(match.group(1)) * _SUFFIX[match.group(2) or ""] if unitless else float("nan")
        if not (math.isfinite(value) and value > 0 and (not ratio or value <= 2 ** 2)):
            allowed = ("a number in (0, 4] (a fraction of the original network; 2X widths cost up to 4X)" if ratio
                       else "a positive number (suffixes k, M, G, T, Ki, Mi, Gi)")
            raise UsageError(f"Invalid {field}. Received: {field}={text!r}. Allowed: {allowed}, or empty for none.")
        return value

    @classmethod
    def from_settings(cls, settings):
        """The search config a work directory's ``search_config.json`` records; keys that are not fields
        (the training's, the model's fingerprint) are ignored, missing fields take their defaults.

        >>> SearchConfig.from_settings({"mode": "tas", "seed": 3, "pair_merge": "pad"}).pair_merge
        'pad'
        """
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in settings.items() if k in names})

    def to_dict(self):
        """The settings as a dict; the fields added later (hardware budgets, the ablations
        ``expansion_init``, ``sawb_scope``, ``pair_merge`` and ``arch_balance``) only when they differ from their defaults
        (a search started before they existed records, and resumes with, the same settings)."""
        return {k: v for k, v in dataclasses.asdict(self).items()
                if k not in _LATER_FIELDS or v != _LATER_FIELDS[k]}


_SUFFIX = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
           "ki": 2.0 ** 10, "Ki": 2.0 ** 10, "Mi": 2.0 ** 20, "Gi": 2.0 ** 30, "Ti": 2.0 ** 40}
_LATER_FIELDS = {f.name: f.default for f in dataclasses.fields(SearchConfig)
                 if f.name in ("memory_bytes", "memory_ratio", "bops", "bops_ratio", "memory_tolerance",
                               "bops_tolerance", "lambda_memory", "lambda_bops", "float_bits", "expansion_init",
                               "sawb_scope", "arch_balance", "supernet_epochs", "supernet_lr", "max_width_ratio",
                               "pair_merge")}
