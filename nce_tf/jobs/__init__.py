"""Jobs: what the tools run, above every library package they use.

- :mod:`nce_tf.jobs.search`: ``run_search`` behind ``tools/search.py`` (data, super-net, bi-level
  fit with tau and expansion, derivation, ``arch.json``; checkpoints and resume).

A job may import anything in ``nce_tf``; nothing below imports a job, so the search's core
(``nce_tf.search``), the model sources and the adapter stay free of work directories.
"""
