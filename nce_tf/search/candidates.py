"""Candidate widths of a searchable layer: the width grid and the tables of each search mode.
A layer of original width ``n`` starts with the candidates of a **width grid** of ratios up to
1X, ``C = r n`` for ``r`` in the grid:

- ``nce`` (default, reading A of the design notes): ``r = j / 8``, ``j = 1..8``, rounded half up;
- ``tas``: TAS's published grid ``0.3, 0.4, ..., 1.0``, truncated as TAS's code does
  (``int(r n)``: n = 16 gives 4, 6, 8, 9, 11, 12, 14, 16);
- any list of ratios in ``(0, 1]`` ending at 1 (``"0.25,0.5,0.75,1"``), rounded half up.

NCE's expansion then appends ``(1 + i / 8) n``, ``i = 1..8``, one per expansion, up to 2X.  With a
lane width ``L > 1`` (MAC arrays that process channels in groups of 8 or 16) every width is
rounded up to a multiple of ``L``.  A row's candidates are always **distinct** widths: rounding
that makes two equal keeps one, so the widest width's probability is one entry (the one the
threshold sees) and every expansion adds channels.  A row has at most 16 candidates (``alpha``
is ``[L, 16]``); the table pads each row with its widest width, never live.

Example:

>>> from nce_tf.search.candidates import candidate_widths, row_grid
>>> candidate_widths(16)
[2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32]
>>> row_grid(16, lane=8)         # (candidates, live at the start, most live after expansion)
([8, 16, 24, 32], 2, 4)
>>> row_grid(16, ratios="tas")[0][:8]
[4, 6, 8, 9, 11, 12, 14, 16]
"""

import numpy as np

from nce_tf.errors import UsageError
from nce_tf.search.methods import method_for

BASE_CANDIDATES = 8
MAX_CANDIDATES = 16
GRIDS = {"nce": tuple(j / 8 for j in range(1, 9)), "tas": tuple(j / 10 for j in range(3, 11))}
EXPANSION = tuple(1 + i / 8 for i in range(1, 9))


def parse_ratios(ratios="nce"):
    """``(ratios, truncate)`` of a grid given by name or as a comma list; one-line error otherwise."""
    if isinstance(ratios, str) and ratios.strip() in GRIDS:
        return GRIDS[ratios.strip()], ratios.strip() == "tas"
    allowed = "nce, tas, or 1 to 8 increasing ratios in (0, 1] ending at 1 (e.g. 0.25,0.5,0.75,1)"
    try:
        values = tuple(float(v) for v in (ratios.split(",") if isinstance(ratios, str) else ratios))
    except (TypeError, ValueError):
        values = ()
    ok = (1 <= len(values) <= BASE_CANDIDATES and all(0 < v <= 1 for v in values) and values[-1] == 1
          and all(a < b for a, b in zip(values, values[1:])))
    if not ok:
        raise UsageError(f"Invalid width_ratios. Received: width_ratios={ratios!r}. Allowed: {allowed}.")
    return values, False


def _widths(n, ratios, truncate, lane):
    out = []
    for r in ratios:
        c = max(1, int(r * n + 1e-9) if truncate else int(r * n + 0.5))
        c = -(-c // lane) * lane
        if c not in out:
            out.append(c)
    return sorted(out)


def row_grid(n, lane=1, ratios="nce", scale=1):
    """``(widths, k_init, k_cap)``: a row's distinct candidates, how many start live, how many can be.

    ``scale`` multiplies the base width (TAS's 2X spaces search the grid of ``2 n``).
    """
    if not isinstance(lane, int) or lane < 1:
        raise UsageError(f"Invalid lane width. Received: lane={lane!r}. Allowed: an integer >= 1.")
    values, truncate = parse_ratios(ratios)
    base = _widths(n * scale, values, truncate, lane)
    grown = [c for c in _widths(n * scale, EXPANSION, False, lane) if c > base[-1]]
    return base + grown, len(base), len(base) + len(grown)


def _padded(widths):
    return widths + [widths[-1]] * (MAX_CANDIDATES - len(widths))


def candidate_widths(n, lane=1, ratios="nce"):
    """A row's 16 table entries: its distinct candidates, padded with the widest (index j-1 -> C_j)."""
    return _padded(row_grid(n, lane, ratios)[0])


def search_table(space, mode="nce", tas_space="1x8", ratios="nce", max_ratio=2.0):
    """The candidate table of a search: ``(table [L, 16], initial K per row, K cap per row)``.

    The table is the method's (:mod:`nce_tf.search.methods`: ``candidates``):

    - ``nce`` (the methods ``nce``, ``random``, ``wrpn``): the grid up to 1X live, growing by expansion to 2X;
    - ``tas`` (the method ``tas``) with ``tas_space`` ``1x8`` (the grid up to 1X), ``2x8`` (the grid of ``2 n``: TAS
      pruning a 2X network) or ``2x16`` (the whole NCE table up to 2X, every entry live): a fixed
      space, the rows of the paper's Table 1.

    A pinned row (``row.frozen``) has one candidate, its width.

    Args:
        space: a :class:`nce_tf.search.space.SearchSpace` (its rows and lane width).
        mode: a registered search method (``nce``, ``tas``, ``random``, ``wrpn``, ...).
        tas_space: ``1x8`` | ``2x8`` | ``2x16``.
        ratios: the width grid (see the module doc).
        max_ratio: the widest a row may grow by expansion, as a multiple of its width (2: the paper's
            2X; 1: no expansion); the table keeps every entry, the cap stops the growth.

    Example:

    >>> from types import SimpleNamespace
    >>> space = SimpleNamespace(rows=[SimpleNamespace(n=16, frozen=False)], lane=1)  # one row of 16 channels
    >>> table, k_init, k_cap = search_table(space, ratios="0.875,1", max_ratio=1.25)
    >>> table[0, :5].tolist(), int(k_init[0]), int(k_cap[0])  # 14 and 16 live; 18 and 20 by expansion, not 22
    ([14, 16, 18, 20, 22], 2, 4)
    """
    if not 1.0 <= max_ratio <= 2.0:
        raise UsageError(f"Invalid max_width_ratio. Received: max_width_ratio={max_ratio!r}. Allowed: a number in "
                         "[1, 2].")
    fixed = method_for(mode).candidates == "tas"
    if fixed and tas_space not in ("1x8", "2x8", "2x16"):
        raise UsageError(f"Unknown TAS space. Received: tas_space={tas_space!r}. Allowed: 1x8, 2x8, 2x16.")
    lane = getattr(space, "lane", 1)
    table, k_init, k_cap = [], [], []
    for row in space.rows:
        if row.frozen:
            widths, k0, k1 = [row.n], 1, 1
        elif fixed and tas_space == "2x8":
            widths, k0, _ = row_grid(row.n, lane, ratios, scale=2)
            widths = widths[:k0]
            k1 = k0
        else:
            widths, k0, k1 = row_grid(row.n, lane, ratios)
            k1 = k0 + sum(1 for c in widths[k0:k1] if c <= max_ratio * row.n + 1e-9)
            if fixed:
                k0 = k1 = k0 if tas_space == "1x8" else k1
                widths = widths[:k1]
        table.append(_padded(widths))
        k_init.append(k0)
        k_cap.append(k1)
    return np.array(table, "int32"), np.array(k_init, "int32"), np.array(k_cap, "int32")


def capped(table, k_cap):
    """``table`` with every entry beyond a row's cap replaced by its widest allowed width."""
    table = np.asarray(table)
    cols = np.arange(table.shape[1])[None, :]
    last = table[np.arange(len(table)), np.asarray(k_cap) - 1][:, None]
    return np.where(cols < np.asarray(k_cap)[:, None], table, last)
