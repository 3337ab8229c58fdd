"""Studies: several methods of choosing widths on one budget, many structures each, each trained
several times (the paper's toy experiment, Fig. 3), with honest statistics.

- :class:`StudyConfig` (``config.py``): methods, searches and trainings, their seeds, ``jobs``;
- :func:`plan` (``plan.py``): the runs and the study directory's layout;
- :func:`run_study` (``runner.py``): runs them in child processes, resumable, with progress;
- ``results.py``: rows, per-method summary, the reference method against the others
  (``bootstrap.py``), ``figure.py``: the Fig. 3-style PNG.

``tools/study.py`` is the command line.
"""

from nce_tf.study.bootstrap import difference_ci
from nce_tf.study.config import FIXED, METHODS, SEARCHED, StudyConfig
from nce_tf.study.plan import Run, plan
from nce_tf.study.runner import StudyFailed, run_study

__all__ = ["FIXED", "METHODS", "SEARCHED", "Run", "StudyConfig", "StudyFailed", "difference_ci", "plan",
           "run_study"]
