"""What a study runs: methods, how many searches and trainings, their seeds, how many at a time.

A study compares ways of choosing a network's widths on one budget (the paper's Fig. 3):

- ``random``, ``tas``, ``nce``: *searched* methods; each of ``searches`` search seeds gives one
  structure (``random`` draws widths under the budget, ``tas`` / ``nce`` run the super-net
  search of :func:`nce_tf.jobs.search.run_search`);
- ``wrpn``, ``original``: *fixed* methods with one structure whatever the seed (WRPN's uniform
  widening to the budget, the unsearched network), trained as often as every other structure.

Every structure is trained ``trainings`` times from scratch, training seed
``train_seed + j``; search ``i`` uses seed ``search_seed + i``.  The two seed ranges are apart
so that a structure's trainings never share a seed with its search.

Example:

>>> StudyConfig(workdir="runs/study", methods=("tas", "nce"), searches=2, trainings=3).validate().methods
('tas', 'nce')
"""

import dataclasses
import os

from nce_tf.errors import UsageError
from nce_tf.search.candidates import parse_ratios

SEARCHED = ("random", "tas", "nce")
FIXED = ("wrpn", "original")
METHODS = SEARCHED + FIXED

HELP = {
    "methods": f"Methods to compare, comma separated: {', '.join(METHODS)}.",
    "searches": "Searches (structures) per searched method (random, tas, nce); wrpn and original have one.",
    "trainings": "Trainings from scratch of every structure.",
    "search_seed": "Seed of the first search; search i uses search_seed + i.",
    "train_seed": "Seed of the first training of each structure; training j uses train_seed + j.",
    "jobs": "Runs (searches or trainings) at a time, each in its own process; at most the machine's cores.",
    "tas_width_ratios": "Width grid of the tas method (nce | tas | a list, as --width_ratios); empty = --width_ratios.",
    "reference": "Method the others are compared with (difference of means, interval, permutation test); "
                 "empty = nce if studied, else the first method.",
    "level": "Coverage of the comparisons' Welch t intervals; a difference is resolved at p < 1 - level.",
    "resamples": "Random relabelings of a permutation test too large to enumerate (over 10^6 relabelings).",
}


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Settings of a study (see the module doc); the runs' own settings are a
    :class:`nce_tf.train.TrainConfig` and a :class:`nce_tf.search.SearchConfig`."""

    workdir: str = ""
    methods: tuple = ("random", "tas", "nce", "wrpn", "original")
    searches: int = 10
    trainings: int = 3
    search_seed: int = 0
    train_seed: int = 1000
    jobs: int = 1
    tas_width_ratios: str = ""
    reference: str = ""
    level: float = 0.95
    resamples: int = 10_000

    def validate(self):
        """Checks every field; raises a one-line :class:`UsageError`; returns ``self``."""

        def need(ok, field, allowed):
            if not ok:
                raise UsageError(f"Invalid {field}. Received: {field}={getattr(self, field)!r}. Allowed: {allowed}.")

        need(self.workdir, "workdir", "a directory (pass --workdir=DIR)")
        methods = tuple(self.methods)
        need(methods and all(m in METHODS for m in methods), "methods",
             f"a comma list of {', '.join(METHODS)}")
        need(len(set(methods)) == len(methods), "methods", "each method once")
        need(isinstance(self.searches, int) and self.searches >= 1, "searches", ">= 1")
        need(isinstance(self.trainings, int) and self.trainings >= 1, "trainings", ">= 1")
        need(self.search_seed >= 0, "search_seed", ">= 0")
        need(self.train_seed >= 0, "train_seed", ">= 0")
        cores = os.cpu_count() or 1
        need(isinstance(self.jobs, int) and 1 <= self.jobs <= cores, "jobs",
             f"1..{cores} (this machine's cores: each run needs one)")
        if self.tas_width_ratios:
            parse_ratios(self.tas_width_ratios)
        need(not self.reference or self.reference in methods, "reference",
             f"one of the study's methods ({', '.join(methods)})")
        reference = self.reference or ("nce" if "nce" in methods else methods[0])
        need(0 < self.level < 1, "level", "0 < level < 1")
        need(self.resamples >= 100, "resamples", ">= 100")
        return dataclasses.replace(self, methods=methods, reference=reference)

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["methods"] = list(d["methods"])
        return d
