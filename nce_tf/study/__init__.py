"""Studies: several methods of choosing widths on one budget, many structures each, each trained
several times (the paper's toy experiment, Fig. 3), with honest statistics.

- :class:`StudyConfig` (``config.py``): methods, searches and trainings, their seeds, ``jobs``;
- :func:`plan` (``plan.py``): the runs and the study directory's layout;
- :func:`run_study` (``runner.py``): runs them as a plan of the run planner (:mod:`nce_tf.plans`: child
  processes, resumable, with progress), checks the run settings a study directory holds;
- ``results.py``: rows, per-method summary, the reference method against the others
  (``stats.py``: permutation tests, Welch t intervals, minimum detectable differences),
  ``figure.py``: the Fig. 3-style PNG.

``tools/study.py`` is the command line.
"""

from nce_tf.study.config import FIXED, METHODS, SEARCHED, StudyConfig
from nce_tf.study.plan import Run, plan
from nce_tf.study.runner import StudyFailed, run_study
from nce_tf.stats import compare, permutation_test, sign_flip_test

__all__ = ["FIXED", "METHODS", "SEARCHED", "Run", "StudyConfig", "StudyFailed", "compare", "permutation_test", "plan",
           "run_study", "sign_flip_test"]
