"""Jobs: what the tools run, above every library package they use.

- :mod:`nce_tf.jobs.search`: ``run_search`` behind ``tools/search.py`` (data, super-net, bi-level
  fit with tau and expansion, derivation, ``arch.json``; checkpoints and resume).

A job may import anything in ``nce_tf``; nothing below imports a job, so the search's core
(``nce_tf.search``), the model sources and the adapter stay free of work directories.
"""


def run_search(train_config, search_config, verbose=True, strategy=None):
    """Runs one search job; see :func:`nce_tf.jobs.search.run_search`."""
    from nce_tf.jobs.search import run_search as _run

    return _run(train_config, search_config, verbose=verbose, strategy=strategy)


__all__ = ["run_search"]
