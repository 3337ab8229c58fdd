"""Candidate widths of a searchable layer (NCE, reading A of the design notes).

A layer of original width ``n`` has candidates ``C_j = round(j * n / 8)``, ``j = 1..K``:
the search starts with ``K = 8`` (``C_8 = n``, TAS's 1X space with NCE's grid) and each
expansion appends one, up to ``K = 16`` (``C_16 = 2n``, the 2X cap).  With a lane width
``L > 1`` (MAC arrays that process channels in groups of 8 or 16) every candidate is
rounded up to a multiple of ``L`` (never above ``2n`` rounded up); rounding can make
neighbouring candidates equal, which is harmless: they share filters.

Example:

>>> from nce_tf.search.candidates import candidate_widths
>>> candidate_widths(16)
[2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32]
>>> candidate_widths(16, lane=8)[:8]
[8, 8, 8, 8, 16, 16, 16, 16]
"""

from nce_tf.errors import UsageError

BASE_CANDIDATES = 8
MAX_CANDIDATES = 16


def candidate_widths(n, lane=1, max_candidates=MAX_CANDIDATES):
    """All ``max_candidates`` widths of a layer of original width ``n`` (index j-1 -> C_j)."""
    if not isinstance(lane, int) or lane < 1:
        raise UsageError(f"Invalid lane width. Received: lane={lane!r}. Allowed: an integer >= 1.")
    out = []
    for j in range(1, max_candidates + 1):
        c = max(1, int(j * n / BASE_CANDIDATES + 0.5))
        if lane > 1:
            c = -(-c // lane) * lane
        out.append(c)
    return out


def search_table(rows, mode="nce", tas_space="1x8"):
    """The candidate table of a search: ``(table [L, 16], initial K per row, K cap)``.

    - ``nce``: NCE's grid, 8 live candidates (up to 1X), growing to 16 (2X) by expansion;
    - ``tas`` with ``tas_space`` ``1x8`` (8 candidates up to 1X), ``2x8`` (every other
      candidate of the 2X grid: ``j * 2n / 8``) or ``2x16`` (all 16 up to 2X): a fixed space,
      the rows of the paper's Table 1.

    Args:
        rows: the :class:`nce_tf.search.space.Row` list of a search space.
        mode: ``nce`` or ``tas`` (``random`` and ``wrpn`` use the NCE grid).
        tas_space: ``1x8`` | ``2x8`` | ``2x16``.
    """
    import numpy as np

    table = np.array([r.candidates for r in rows], "int32")
    if mode != "tas":
        return table, BASE_CANDIDATES, MAX_CANDIDATES
    if tas_space == "1x8":
        return table, BASE_CANDIDATES, BASE_CANDIDATES
    if tas_space == "2x8":
        wide = table[:, 1::2]
        return np.concatenate([wide, np.repeat(wide[:, -1:], MAX_CANDIDATES - wide.shape[1], 1)], 1), 8, 8
    if tas_space == "2x16":
        return table, MAX_CANDIDATES, MAX_CANDIDATES
    raise UsageError(f"Unknown TAS space. Received: tas_space={tas_space!r}. Allowed: 1x8, 2x8, 2x16.")
