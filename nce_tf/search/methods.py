"""The search methods (``--mode``), one :class:`SearchMethod` class each, in a registry.

A method says whether a super-net is searched (``trains``), whether NCE's channel expansion runs
during the search (``expands``), which candidate table the super-net starts from (``candidates``:
``nce``, the grid up to 1X growing to 2X, or ``tas``, the fixed space of ``--tas_space``), and, for
a method without a search, the widths it picks under the budget (:meth:`SearchMethod.widths`).
The search job (:mod:`nce_tf.jobs.search`), the candidate tables, the expansion callback and the
search log ask the method instead of testing its name.

Adding a method is one subclass decorated with :func:`register_method` (and its test); ``--mode``
then accepts it and ``--help`` and errors list it.  Importable without TensorFlow (the config checks
``--mode`` against :data:`METHODS` before any heavy import).

Example:

>>> from nce_tf.search.methods import METHODS, method_for
>>> list(METHODS)
['nce', 'tas', 'random', 'wrpn']
>>> method_for("wrpn").trains, method_for("nce").expands
(False, True)
"""

from nce_tf.errors import UsageError
from nce_tf.search import baselines

METHODS = {}  # name -> SearchMethod instance, in the order --help lists them


def register_method(cls):
    """Class decorator: registers an instance of a :class:`SearchMethod` subclass under ``cls.name``."""
    METHODS[cls.name] = cls()
    return cls


def method_for(name):
    """The registered method ``name``, else a one-line :class:`UsageError` listing the methods."""
    if name not in METHODS:
        raise UsageError(f"Invalid mode. Received: mode={name!r}. Allowed: {', '.join(METHODS)}.")
    return METHODS[name]


def help_text():
    """``--mode``'s help: every method with its one-line description."""
    return "Search mode: " + ", ".join(f"{m.name} ({m.help})" for m in METHODS.values()) + "."


class SearchMethod:
    """One search method.

    Attributes:
        name: the ``--mode`` value.
        help: one line for ``--help``.
        trains: a super-net is searched (False: :meth:`widths` picks the widths from the budget alone).
        expands: NCE's channel expansion runs during the search.
        candidates: the candidate table (:func:`nce_tf.search.candidates.search_table`): ``nce`` or ``tas``.
    """

    name = ""
    help = ""
    trains = True
    expands = False
    candidates = "nce"

    def label(self, config):
        """How the search's start line names the method (``tas 2x8``)."""
        return self.name

    def widths(self, space, budget, *, seed, table, k_caps):
        """The widths of a method without a search: a list of ints meeting ``budget``'s limits.

        Args:
            space: the :class:`~nce_tf.search.space.SearchSpace`.
            budget: the search's :class:`~nce_tf.search.units.Budget`.
            seed: the run's seed.
            table, k_caps: the candidate table and each row's cap (the search's grid).
        """
        raise NotImplementedError(f"search method {self.name!r} searches a super-net; it has no fixed widths")


@register_method
class Nce(SearchMethod):
    name, help, expands = "nce", "expansion on", True


@register_method
class Tas(SearchMethod):
    name, help, candidates = "tas", "fixed space, see --tas_space", "tas"

    def label(self, config):
        return f"tas {config.tas_space}"


@register_method
class Random(SearchMethod):
    name, help, trains = "random", "random widths under the budget", False

    def widths(self, space, budget, *, seed, table, k_caps):
        return baselines.random_widths(space, budget, table, k_caps, seed=seed)


@register_method
class Wrpn(SearchMethod):
    name, help, trains = "wrpn", "uniform width multiplier meeting the budget", False

    def widths(self, space, budget, *, seed, table, k_caps):
        return baselines.wrpn_widths(space, budget)
