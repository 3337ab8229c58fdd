"""The README's generated tables: every ``<!-- NAME:begin -->`` / ``<!-- NAME:end -->`` block
rewritten from the committed records (``nce-tf results readme``), or compared with them (``--check``).

Each marker pair of the README is one of:

- a table of :data:`GENERATED`: a record table of :data:`nce_tf.results.tables.TABLES` or an
  analysis table of :data:`nce_tf.results.summary_tables.SUMMARY_TABLES`; its block is the table
  rendered from ``results/<its source>`` (``"up to date"``, ``"drifted"`` under ``--check``,
  ``"regenerated"``);
- a name of :data:`nce_tf.results.tables.LEGACY`: made by earlier code without per-run records;
  left as it is and reported (``"legacy"``), never regenerated;
- anything else: a one-line error (a block nobody generates must be declared legacy, not skipped).

A defined table whose markers the README lacks is reported (``"not in README"``). Markers that do
not pair up (a begin without its end, twice the same name) are a one-line error.

Example::

    report = update_readme("README.md", "results", check=True)
    [(name, status) for name, status, _ in report]   # [("premise-trained", "up to date"), ...]
"""

import os
import re

from nce_tf.errors import UsageError
from nce_tf.io_utils import atomic_write_text
from nce_tf.results.summary_tables import SUMMARY_TABLES
from nce_tf.results.tables import LEGACY, TABLES

# marker name -> every generated table, record tables and analysis tables alike
GENERATED = {**TABLES, **SUMMARY_TABLES}

MARKER = re.compile(r"<!-- ([A-Za-z0-9_.-]+):(begin|end) -->")


def blocks(text, path="README.md"):
    """``{name: (start, end)}``: the text between each marker pair (after the begin marker's line
    end, up to the end marker); one-line error when the markers do not pair up."""
    out, open_name, open_at = {}, None, None
    for match in MARKER.finditer(text):
        name, side = match.groups()
        if side == "begin":
            if open_name is not None:
                raise UsageError(f"Marker {name}:begin inside the block of {open_name}. Received: {path!r}")
            if name in out:
                raise UsageError(f"Two blocks named {name!r}. Received: {path!r}")
            open_name, open_at = name, match.end() + (1 if text[match.end():match.end() + 1] == "\n" else 0)
        else:
            if name != open_name:
                raise UsageError(f"Marker {name}:end without its begin. Received: {path!r}")
            out[name] = (open_at, match.start())
            open_name = None
    if open_name is not None:
        raise UsageError(f"Marker {open_name}:begin without its end. Received: {path!r}")
    return out


def render(name, results_dir):
    """The generated block of table ``name`` from its source under ``results_dir``."""
    return GENERATED[name].render_from(results_dir)


def update_readme(readme, results_dir, check=False):
    """Regenerates (or with ``check``, compares) every generated block of ``readme``.

    Args:
        readme: the README's path.
        results_dir: the directory of the records files (a checkout's ``results/``).
        check: write nothing; report the blocks that differ from their records as ``"drifted"``.

    Returns:
        ``[(name, status, detail)]``, in README order then the defined tables it lacks; status is
        ``"up to date"``, ``"regenerated"``, ``"drifted"``, ``"legacy"`` or ``"not in README"``.
    """
    if not os.path.isfile(readme):
        raise UsageError(f"README not found. Received: readme={readme!r}")
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    found = blocks(text, readme)
    unknown = [name for name in found if name not in GENERATED and name not in LEGACY]
    if unknown:
        raise UsageError(f"README block {unknown[0]!r} is neither a generated table nor declared legacy. "
                         f"Received: {readme!r}. Allowed: {', '.join([*GENERATED, *LEGACY])} (define the table in "
                         "nce_tf/results/tables.py or summary_tables.py, or list it in LEGACY).")
    report, new_text, shift = [], text, 0
    for name, (start, end) in sorted(found.items(), key=lambda item: item[1]):
        if name in LEGACY:
            report.append((name, "legacy", LEGACY[name]))
            continue
        block = render(name, results_dir)
        source = f"results/{GENERATED[name].source}"
        if text[start:end] == block:
            report.append((name, "up to date", source))
            continue
        report.append((name, "drifted" if check else "regenerated", source))
        new_text = new_text[:start + shift] + block + new_text[end + shift:]
        shift += len(block) - (end - start)
    report += [(name, "not in README", f"results/{table.source}")
               for name, table in GENERATED.items() if name not in found]
    if not check and new_text != text:
        atomic_write_text(readme, new_text)
    return report
