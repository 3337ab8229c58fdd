"""The runs of a study and where each one lives in the study's work directory.

Layout (see WORKSPACE.md)::

    STUDY/runs/<structure>/search/          a search work directory (arch.json, search_log.jsonl)
    STUDY/runs/<structure>/train_t<seed>/   a training work directory (metrics.json, model.keras)
    STUDY/runs/<structure>/<run>.log        the run's output
    STUDY/runs/<structure>/<run>.done.json  written when the run finished: its result and wall time

A trained network given as ``init_from`` (with ``pact_init``) starts the searches; the trainings
are from scratch whatever it says.

``<structure>`` is ``<method>_s<search seed>`` for a searched method (``nce_s3``) and the
method's name for a fixed one (``original``, ``wrpn``).  The original network has no search
run: its trainings build the zoo model itself.

Runs are listed structure by structure in order of search seed, the methods interleaved
(``random_s0, tas_s0, nce_s0, wrpn, original, random_s1, ...``), each search before its
trainings: a study stopped early has comparable numbers of structures for every method.
"""

import dataclasses
import os
from typing import Optional

from nce_tf.study.config import FIXED
from nce_tf.train.config import DEFAULT_MODEL


@dataclasses.dataclass(frozen=True)
class Run:
    """One search or training of a study, with the configs it runs with."""

    key: str  # "<structure>/<run>", unique in the study
    method: str
    structure: str
    kind: str  # "search" or "train"
    search_seed: Optional[int]
    train_seed: Optional[int]
    workdir: str
    needs: Optional[str]  # key of the search whose arch.json a training reads
    train_config: object  # nce_tf.train.TrainConfig
    search_config: object = None  # nce_tf.search.SearchConfig (searches only)


def plan(study, train_config, search_config):
    """Every run of ``study`` (a validated :class:`StudyConfig`), in the order they are started."""
    root = os.path.join(os.path.abspath(study.workdir), "runs")
    # A trained network (init_from, pact_init) is where the searches start (a search from a trained
    # network); every training is from scratch, the paper's protocol.
    searching = dataclasses.replace(train_config, overwrite=False, arch="")
    base = dataclasses.replace(searching, init_from="", pact_init="fixed")
    model = train_config.model or DEFAULT_MODEL
    runs = []
    for i in range(study.searches):
        seed = study.search_seed + i
        for method in study.methods:
            if method in FIXED and i > 0:
                continue
            structure = method if method in FIXED else f"{method}_s{seed}"
            search_key, arch = None, ""
            if method != "original":
                search_key = f"{structure}/search"
                workdir = os.path.join(root, structure, "search")
                scfg = dataclasses.replace(search_config, mode=method)
                if method == "tas" and study.tas_width_ratios:
                    scfg = dataclasses.replace(scfg, width_ratios=study.tas_width_ratios)
                runs.append(Run(search_key, method, structure, "search", None if method in FIXED else seed, None,
                                workdir, None, dataclasses.replace(searching, model=model, seed=seed, workdir=workdir),
                                scfg))
                arch = os.path.join(workdir, "arch.json")
            for j in range(study.trainings):
                tseed = study.train_seed + j
                workdir = os.path.join(root, structure, f"train_t{tseed}")
                tcfg = dataclasses.replace(base, model="" if arch else model, arch=arch, seed=tseed, workdir=workdir)
                runs.append(Run(f"{structure}/train_t{tseed}", method, structure, "train",
                                None if method in FIXED else seed, tseed, workdir, search_key, tcfg))
    return runs
