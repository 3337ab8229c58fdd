"""Every generated README table, defined once: its records, rows, columns and footnote.

A :class:`Table` names the README block it fills (``<!-- NAME:begin -->`` ... ``<!-- NAME:end -->``),
the records file under ``results/`` it reads, which records it takes, how they group into rows
(one row per configuration; the records of a row are its seeds), and its columns. Every numeric
cell aggregates the row's records: mean +- sample standard deviation over the seeds (the mean
alone for one seed; one value when all seeds agree, as a network's cost does).

The records of one row must agree in every setting but the seeds and the paths naming a run's
float network or teacher (:data:`PER_SEED_SETTINGS`): a row never averages two recipes. The
commit column names the commit(s) a row's runs ran at (``+dirty`` when tracked files differed
from it); the footnote names the commit, the nce-tf, Python and library versions of the table,
and every row that came from another commit than the rest says so there.

:data:`LEGACY` lists the README's marker names that come from code without per-run records:
they are not generated (and never fabricated), only reported as such.

Example (a new table: a definition here and the markers in README.md)::

    TABLES["quick"] = Table(name="quick", source="quick.jsonl", about="the quickstart runs",
                            select=lambda r: r["kind"] == "nce", key=lambda r: (r["w_bits"],),
                            labels=(("bits", lambda k: f"W{k[0]}"),), columns=STANDARD_COLUMNS)
"""

import collections
import dataclasses
import statistics
from typing import Callable

from nce_tf.errors import UsageError

# Settings that differ between the seeds of one configuration: the seeds, and the float network or
# teacher of the same seed a float-initialised run starts from (its path and its file's hash).
PER_SEED_SETTINGS = ("init_from", "init_from_sha256", "teacher", "teacher_sha256")


def is_per_seed(key):
    return key == "seed" or key.endswith("_seed") or key in PER_SEED_SETTINGS


def short(commit):
    return commit[:7] if commit else "unknown"


def commits_of(rec):
    """The commits a record's run ran at (every sitting's), as ``short+dirty`` labels, sorted."""
    prov = rec.get("provenance") or {}
    sittings = (prov.get("times") or {}).get("sittings") or [prov]
    return sorted({short(s.get("commit")) + ("+dirty" if s.get("dirty") else "") for s in sittings})


def mean_std(values, scale=1.0, digits=2):
    """``"m +- s"`` of ``values * scale`` (sample std); ``"m"`` for one value or when all are equal."""
    values = [scale * v for v in values]
    mean = statistics.fmean(values)
    if len(values) == 1 or len(set(values)) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} +- {statistics.stdev(values):.{digits}f}"


@dataclasses.dataclass(frozen=True)
class Column:
    """A column: its header and its cell from the records of a row."""

    header: str
    cell: Callable


def _seeds_cell(recs):
    seeds = [rec["seeds"].get("seed") for rec in recs]
    return f"{len(recs)} ({', '.join(str(s) for s in sorted(seeds, key=str))})"


def _commit_cell(recs):
    return ", ".join(sorted({c for rec in recs for c in commits_of(rec)}))


SEEDS = Column("seeds", _seeds_cell)
ACCURACY = Column("test accuracy (%)", lambda recs: mean_std([r["accuracy"]["test"] for r in recs], 100))
MACS = Column("MACs (M)", lambda recs: mean_std([r["costs"]["macs"] for r in recs], 1e-6))
PARAMS = Column("PARAMs (K)", lambda recs: mean_std([r["costs"]["params"] for r in recs], 1e-3, 1))
COMMIT = Column("commit", _commit_cell)
STANDARD_COLUMNS = (SEEDS, ACCURACY, MACS, PARAMS, COMMIT)


@dataclasses.dataclass(frozen=True)
class Table:
    """One generated README table.

    Attributes:
        name: the README marker name (``<!-- name:begin -->``).
        source: its records file, relative to ``results/``.
        about: what the rows are, for the footnote (one sentence, no final period).
        select: ``record -> bool``: the records it takes.
        key: ``record -> tuple``: the row a record belongs to; rows are sorted by it.
        labels: ``(header, key -> str)`` pairs: the row's first cells, from its key.
        columns: the :class:`Column` s after the labels.
        vary: settings besides the per-seed ones that may differ within a row (e.g. ``("arch", "widths")``
            for the final trainings of searches, whose structures differ from seed to seed).
    """

    name: str
    source: str
    about: str
    select: Callable
    key: Callable
    labels: tuple
    columns: tuple = STANDARD_COLUMNS
    vary: tuple = ()

    def rows(self, records):
        """``[(key, records)]``, sorted by key; one-line error when nothing is selected or a row's
        records differ in a setting that is not per seed."""
        groups = collections.defaultdict(list)
        for rec in records:
            if self.select(rec):
                groups[self.key(rec)].append(rec)
        if not groups:
            raise UsageError(f"No record of results/{self.source} belongs in table {self.name!r} ({self.about}). "
                             f"Received: {len(records)} records.")
        for key, recs in groups.items():
            _check_one_recipe(self, key, recs)
        return sorted(groups.items())

    def render(self, records):
        """The table's markdown (header, rows, a blank line, the footnote), without markers."""
        rows = self.rows(records)
        headers = [h for h, _ in self.labels] + [c.header for c in self.columns]
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        for key, recs in rows:
            cells = [label(key) for _, label in self.labels] + [c.cell(recs) for c in self.columns]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n\n" + self.footnote(rows) + "\n"

    def footnote(self, rows):
        """Where the rows came from: the records file, the commit(s) and versions; the rows from
        another commit than the rest, by name."""
        recs = [rec for _, group in rows for rec in group]
        count = collections.Counter(c for rec in recs for c in commits_of(rec))
        main = max(count, key=lambda c: (count[c], c))
        text = (f"Generated by `nce-tf results readme` from `results/{self.source}` ({len(recs)} runs): {self.about}; "
                f"mean +- std over seeds. Commit {main}{_versions(recs)}.")
        others = [(key, sorted({c for rec in group for c in commits_of(rec)} - {main})) for key, group in rows]
        others = [f"{' '.join(label(key) for _, label in self.labels)} ({', '.join(c)})" for key, c in others if c]
        if others:
            text += " From another commit than the rest: " + "; ".join(others) + "."
        if any(c.endswith("+dirty") for c in count):
            text += " +dirty: run with uncommitted changes to tracked files."
        return text


def _versions(recs):
    """`` (nce-tf X; Python ..., TensorFlow ..., ...)``: each version as one value, or all the values seen."""
    seen = collections.defaultdict(set)
    for rec in recs:
        prov = rec.get("provenance") or {}
        seen["nce-tf"].add(prov.get("nce_tf"))
        for lib, name in (("python", "Python"), ("tensorflow", "TensorFlow"), ("keras", "Keras"), ("numpy", "numpy")):
            seen[name].add((prov.get("versions") or {}).get(lib))
    parts = [f"{name} {' / '.join(sorted(str(v) for v in values))}" for name, values in seen.items()]
    return f" ({parts[0]}; {', '.join(parts[1:])})"


def _check_one_recipe(table, key, recs):
    first = recs[0]["settings"]
    for rec in recs[1:]:
        settings = rec["settings"]
        differ = sorted(k for k in set(first) | set(settings)
                        if not is_per_seed(k) and k not in table.vary and first.get(k) != settings.get(k))
        if differ:
            k = differ[0]
            raise UsageError(f"Records of one row of table {table.name!r} differ in settings other than the seed "
                             f"({', '.join(differ)}). Received: {k}={first.get(k)!r} in {recs[0]['run']!r}, "
                             f"{k}={settings.get(k)!r} in {rec['run']!r}. Allowed: one recipe per row.")


def _precision(key):
    return f"W{key[0]}A{key[1]}"


_INIT = {"scratch": "scratch", "float": "float init"}

# marker name -> Table; every README block between markers of these names is generated.
TABLES = {
    "premise-trained": Table(
        name="premise-trained", source="premise_trained.jsonl",
        about="ResNet-20 trained on the CIFAR-10 subset, per precision and initialisation",
        select=lambda r: r["kind"] == "train" and r["model"] == "resnet20" and r["dataset"] == "cifar10_subset",
        # higher precision first, scratch before float init, distilled last
        key=lambda r: (-r["w_bits"], -r["a_bits"], r["init"] != "scratch", r["kd"]),
        labels=(("precision", lambda k: _precision((-k[0], -k[1]))),
                ("init", lambda k: _INIT["float" if k[2] else "scratch"] + (" + KD" if k[3] else ""))),
    ),
}

# marker name -> why it is not generated: README blocks made by earlier code, without per-run records.
LEGACY = {
    "study-r8": "copied from results/study_r8_w2a2/summary.md, a study whose runs recorded no provenance",
    "cifar-subset-table": "written by nce-tf cifar-subset-table from runs of two commits without per-run records",
}
