"""Jobs: what the tools run, above every library package they use.

- :mod:`nce_tf.jobs.search`: ``run_search`` behind ``tools/search.py`` (data, super-net, bi-level
  fit on the library's tau and expansion callbacks, derivation, ``arch.json``), a job of the
  lifecycle every job shares (:mod:`nce_tf.train.lifecycle`: settings, checkpoints, resume);
- :mod:`nce_tf.jobs.search_log`: the search's per-epoch record and progress line.

A job may import anything in ``nce_tf``; nothing below imports a job, so the search's core
(``nce_tf.search``), the model sources and the adapter stay free of work directories.
"""
