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
import math
import os
import statistics
from typing import Callable

from nce_tf import stats
from nce_tf.errors import UsageError
from nce_tf.results.records import read_records

# Settings that differ between the seeds of one configuration: the seeds, and the float network or
# teacher of the same seed a float-initialised run starts from, or the trained network a compression
# starts from (its path and its file's hash).
PER_SEED_SETTINGS = ("init_from", "init_from_sha256", "teacher", "teacher_sha256", "trained", "trained_file",
                     "trained_sha256")


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


class RecordTable:
    """What every table made of per-run records shares: its block is rendered from ``results/SOURCE``
    (the interface of every generated table, :mod:`nce_tf.results.readme`); a subclass sets ``source``."""

    def render_from(self, results_dir):
        """The table's markdown from its records file under ``results_dir``."""
        return self.render(read_records(os.path.join(results_dir, self.source)))


@dataclasses.dataclass(frozen=True)
class Table(RecordTable):
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
        main, count = main_commit(recs)
        text = (f"Generated by `nce-tf results readme` from `results/{self.source}` ({len(recs)} runs): {self.about}; "
                f"mean +- std over seeds. Commit {main}{versions_note(recs)}.")
        others = [(key, sorted({c for rec in group for c in commits_of(rec)} - {main})) for key, group in rows]
        others = [f"{' '.join(label(key) for _, label in self.labels)} ({', '.join(c)})" for key, c in others if c]
        if others:
            text += " From another commit than the rest: " + "; ".join(others) + "."
        return text + dirty_note(count)


def main_commit(recs):
    """``(commit, counts)``: the commit most of ``recs`` name (``"none"`` for none), and every commit's count."""
    count = collections.Counter(c for rec in recs for c in commits_of(rec))
    return (max(count, key=lambda c: (count[c], c)) if count else "none"), count


def dirty_note(count):
    return " +dirty: run with uncommitted changes to tracked files." if any(c.endswith("+dirty") for c in count) else ""


def versions_note(recs):
    """`` (nce-tf X; Python ..., TensorFlow ..., ...)``: each version as one value, or all the values seen."""
    seen = collections.defaultdict(set)
    for rec in recs:
        prov = rec.get("provenance") or {}
        seen["nce-tf"].add(prov.get("nce_tf"))
        for lib, name in (("python", "Python"), ("tensorflow", "TensorFlow"), ("keras", "Keras"), ("numpy", "numpy")):
            seen[name].add((prov.get("versions") or {}).get(lib))
    shown = {name: sorted("unrecorded" if v is None else str(v) for v in values) for name, values in seen.items()}
    parts = [f"{name} {' / '.join(values)}" for name, values in shown.items()]
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


class PairedTable(RecordTable):
    """A generated table of paired differences: ``method`` minus each other method, one row per
    configuration and other method, over the seeds both share.

    The unit is the seed: records of one seed must start from the same network (equal
    ``pair_on`` setting, e.g. a compression's ``trained_sha256``), which is what makes the pair
    share something (a paired test without it would claim a correlation the design does not
    have).  Each row: the per-seed differences, their mean, the t interval of the mean
    difference (exact coverage for normal differences; at n = 3 wide), the exact two-sided
    sign-flip p-value with the smallest p the design can give (``p_min``: 2 / 2^n), and the
    minimum difference detectable at 80% power by the paired t test (``nce_tf.stats``); "not
    resolved" whenever p is not under 0.05, which at n <= 4 is always.

    Attributes:
        name, source, about, select: as :class:`Table`.
        key: ``record -> tuple``: the configuration (without the method).
        labels: ``(header, key -> str)`` pairs for the configuration's cells.
        method: ``record -> str``: the method of a record; ``reference`` the method compared.
        value: ``record -> float``: the compared quantity (scaled for display by ``scale``).
        pair_on: the setting the two records of a seed must share.
    """

    def __init__(self, name, source, about, select, key, labels, method, reference, value, pair_on,
                 scale=100.0, unit="pp"):
        self.name, self.source, self.about, self.select, self.key = name, source, about, select, key
        self.labels, self.method, self.reference, self.value = labels, method, reference, value
        self.pair_on, self.scale, self.unit = pair_on, scale, unit

    def pairs(self, records):
        """``[(key, other method, [(seed, reference record, other record)])]``, sorted."""
        cells = collections.defaultdict(dict)
        for rec in records:
            if self.select(rec):
                seed = rec["seeds"].get("seed")
                slot = cells[self.key(rec)].setdefault(self.method(rec), {})
                if seed in slot:
                    raise UsageError(f"Two records of seed {seed} for one method in table {self.name!r}. Received: "
                                     f"{slot[seed]['run']!r} and {rec['run']!r}. Allowed: one run per seed.")
                slot[seed] = rec
        if not cells:
            raise UsageError(f"No record of results/{self.source} belongs in table {self.name!r} ({self.about}). "
                             f"Received: {len(records)} records.")
        out = []
        for key, methods in sorted(cells.items()):
            ref = methods.get(self.reference, {})
            for other in sorted(m for m in methods if m != self.reference):
                seeds = sorted(set(ref) & set(methods[other]), key=str)
                for seed in seeds:
                    a, b = ref[seed]["settings"].get(self.pair_on), methods[other][seed]["settings"].get(self.pair_on)
                    if a is None or a != b:  # two missing values share nothing either
                        raise UsageError(f"The pair of seed {seed} in table {self.name!r} does not share its "
                                         f"{self.pair_on}. Received: {a!r} in {ref[seed]['run']!r}, {b!r} in "
                                         f"{methods[other][seed]['run']!r}. Allowed: pairs from one network.")
                out.append((key, other, [(s, ref[s], methods[other][s]) for s in seeds]))
        return out

    def render(self, records):
        rows = self.pairs(records)
        headers = [h for h, _ in self.labels] + [
            "vs", "seeds", f"differences ({self.unit})", f"mean ({self.unit})", f"95% t interval ({self.unit})",
            "sign-flip p (p_min)", f"detectable at 80% ({self.unit})", "verdict"]
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        used = []
        for key, other, trios in rows:
            used += [r for _, a, b in trios for r in (a, b)]
            d = [self.scale * (self.value(a) - self.value(b)) for _, a, b in trios]
            cells = [label(key) for _, label in self.labels] + [other, str(len(d))]
            cells += [", ".join(f"{v:+.2f}" for v in d)] + paired_cells(d)
            lines.append("| " + " | ".join(cells) + " |")
        return _paired_text(self, lines, used, f"paired by seed (the pair shares its {self.pair_on}). ")


class NetworkPairedTable(RecordTable):
    """``reference`` minus each other method with the trained network as the unit, pooled over configurations.

    Where one trained network is compressed in several configurations (budgets, precisions), its
    configurations are not independent pairs: they share the network.  Here the unit is the network
    (records with one ``pair_on`` value, e.g. ``trained_sha256``): its difference is the mean, over the
    configurations in which both methods compressed it, of reference minus the other method; the
    units' differences are then tested as :class:`PairedTable` tests seeds (t interval, exact sign-flip
    p, detectable difference).  What it asks: is the reference better on average over these
    configurations, network by network.  Every network weighs the same, whether its mean covers one
    configuration or several (a mean of more is less noisy; the sign-flip test does not care, the t
    interval treats the units' spreads as equal).

    Attributes:
        name, source, about, select, method, reference, value, pair_on, scale, unit: as :class:`PairedTable`.
        config: ``record -> tuple``: the configuration a record belongs to (one record per network,
            method and configuration).
        describe: ``config -> str``: a configuration's name, for the footnote.
    """

    def __init__(self, name, source, about, select, config, describe, method, reference, value, pair_on,
                 scale=100.0, unit="pp"):
        self.name, self.source, self.about, self.select, self.config = name, source, about, select, config
        self.describe, self.method, self.reference, self.value = describe, method, reference, value
        self.pair_on, self.scale, self.unit = pair_on, scale, unit

    def units(self, records):
        """``[(other method, [(network, [(config, reference record, other record)])])]``, sorted."""
        cells = collections.defaultdict(dict)  # (network, config) -> method -> record
        for rec in records:
            if self.select(rec):
                if rec["settings"].get(self.pair_on) is None:
                    raise UsageError(f"A record without its {self.pair_on} cannot be placed in table {self.name!r}. "
                                     f"Received: {rec['run']!r}. Allowed: records naming their trained network.")
                slot = cells[(rec["settings"][self.pair_on], self.config(rec))]
                if self.method(rec) in slot:
                    raise UsageError(f"Two records of one network, method and configuration in table {self.name!r}. "
                                     f"Received: {slot[self.method(rec)]['run']!r} and {rec['run']!r}. "
                                     f"Allowed: one run per network, method and configuration.")
                slot[self.method(rec)] = rec
        if not cells:
            raise UsageError(f"No record of results/{self.source} belongs in table {self.name!r} ({self.about}). "
                             f"Received: {len(records)} records.")
        others = sorted({m for slot in cells.values() for m in slot} - {self.reference})
        out = []
        for other in others:
            networks = collections.defaultdict(list)
            for (network, config), slot in sorted(cells.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
                if self.reference in slot and other in slot:
                    networks[network].append((config, slot[self.reference], slot[other]))
            out.append((other, sorted(networks.items(), key=lambda kv: str(kv[0]))))
        return out

    def render(self, records):
        headers = ["vs", "networks", "configurations per network", f"differences ({self.unit})",
                   f"mean ({self.unit})", f"95% t interval ({self.unit})", "sign-flip p (p_min)",
                   f"detectable at 80% ({self.unit})", "verdict"]
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        used, configs = [], set()
        for other, networks in self.units(records):
            d = []
            for _, trios in networks:
                used += [r for _, a, b in trios for r in (a, b)]
                configs.update(c for c, _, _ in trios)
                d.append(self.scale * statistics.fmean(self.value(a) - self.value(b) for _, a, b in trios))
            counts = ", ".join(str(len(trios)) for _, trios in networks)
            lines.append("| " + " | ".join([other, str(len(d)), counts, ", ".join(f"{v:+.2f}" for v in d)]
                                           + paired_cells(d, "network")) + " |")
        return _paired_text(self, lines, used, f"one unit per trained network (its {self.pair_on}): the mean of its "
                            f"differences over the configurations both methods compressed it in "
                            f"({'; '.join(self.describe(c) for c in sorted(configs))}). ")


def _paired_text(table, lines, used, how):
    """A paired table's markdown: its ``lines``, then the footnote over the records ``used`` (``how``: how
    the differences pair, one sentence)."""
    recs = list({id(r): r for r in used}.values())
    main, count = main_commit(recs)
    note = (f"Generated by `nce-tf results readme` from `results/{table.source}` ({len(recs)} runs): {table.about}; "
            f"{table.reference} minus the method named, {how}Commit {main}{versions_note(recs) if recs else ''}.")
    others = sorted(c for c in count if c != main)
    if others:
        note += f" Also from: {', '.join(others)}."
    return "\n".join(lines) + "\n\n" + note + dirty_note(count) + "\n"


def paired_cells(d, unit="seed", spec=".2f"):
    """Mean, t interval, sign-flip p (p_min), minimum detectable difference and verdict of differences ``d``
    (one per ``unit``; numbers formatted by ``spec``, e.g. ``".2e"`` for gradients). The detectable difference
    is the paired t test's at 80% power; with 5 units or fewer the exact sign-flip test (the verdict's) cannot
    go under 0.05 at any effect size, so it reads "none at n = N" there."""
    n = len(d)
    mean = statistics.fmean(d) if d else float("nan")
    if n < 2:
        return [f"{mean:+{spec}}" if d else "-", "-", "-", "-", f"not tested (one {unit})" if d else "no pairs"]
    se = statistics.stdev(d) / math.sqrt(n)
    half = float(stats.t_quantile(0.975, n - 1)) * se
    test = stats.sign_flip_test(d)
    verdict = "resolved" if test["p"] < 0.05 else "not resolved"
    if test["p_min"] >= 0.05:  # the t test's detectable difference would claim a power the sign-flip test has not
        detectable = f"none at n = {n}"
    else:
        detectable = f"{stats.min_detectable_difference(se, n - 1) if se > 0 else 0.0:{spec}}"
    return [f"{mean:+{spec}}", f"[{mean - half:+{spec}}, {mean + half:+{spec}}]",
            f"{test['p']:.3g} ({test['p_min']:.3g})", detectable, verdict]


def _precision(key):
    return f"W{key[0]}A{key[1]}"


_INIT = {"scratch": "scratch", "float": "float init"}
# the phases of a compression, in the order they run (nce_tf/compression)
COMPRESS_PHASES = ("setup", "search", "derive", "finetune", "export")
_METHODS = ("nce", "l1_uniform", "l1_global", "scratch")


def _phase_minutes(recs, phase):
    """A phase's wall minutes over the row's runs that timed it; "-" where none did (a method without a
    search), and how many did where only some did (a missing time is not a zero)."""
    timed = [r["times"][phase] / 60 for r in recs if phase in r["times"]]
    if not timed:
        return "-"
    cell = mean_std(timed, 1, 1)
    return cell if len(timed) == len(recs) else f"{cell} ({len(timed)} of {len(recs)} runs)"

# a training's structure (records.py) -> its label; rows in this order
_STRUCTURES = {"original": "original", "nce": "NCE's, searched", "tas": "TAS's (1X), searched",
               "wrpn": "WRPN's (uniform)", "random": "random", "arch": "from an arch file"}
_STRUCTURE_ORDER = list(_STRUCTURES)


def _structure(rec):
    # records collected before trainings recorded their structure: a pipeline's is its search's mode
    return rec.get("structure") or (rec.get("search") or {}).get("mode") or "original"


def _wall_seconds(rec):
    """A run's wall time over all its sittings; a pipeline's is its search's plus its training's."""
    total = ((rec.get("provenance") or {}).get("times") or {}).get("wall_seconds") or 0.0
    search = (rec.get("search") or {}).get("provenance") or {}
    return total + ((search.get("times") or {}).get("wall_seconds") or 0.0)


_QUICKSTART = {("nce", 2): "`nce-tf nce --flagfile=quickstart` (search, derive, W2A2 training of the derived network)",
               ("train", 2): "`nce-tf train --flagfile=quickstart` (the original ResNet-20, W2A2)",
               ("train", 32): "`nce-tf train --flagfile=quickstart --w_bits=32 --a_bits=32` (float)"}


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
    "quickstart": Table(
        name="quickstart", source="quickstart.jsonl",
        about="the quickstart preset on its synthetic task (chance 10%), each seed its own task, initialisation "
              "and data order",
        select=lambda r: r["kind"] in ("train", "nce") and r["model"] == "resnet20" and r["dataset"] == "synthetic",
        key=lambda r: (r["kind"], r["w_bits"]),
        labels=(("run", lambda k: _QUICKSTART[k]),),
        columns=(SEEDS, ACCURACY,
                 Column("MACs ratio", lambda recs: mean_std([(r.get("search") or {}).get("macs_ratio", 1.0)
                                                             for r in recs], 1, 3)),
                 Column("wall time (s)", lambda recs: mean_std([_wall_seconds(r) for r in recs], 1, 0)), COMMIT),
        # a pipeline's final training takes its seed's searched architecture
        vary=("arch", "widths"),
    ),
    "cifar-subset": Table(
        name="cifar-subset", source="cifar_subset.jsonl",
        about="ResNet-20 on the CIFAR-10 subset (`nce-tf cifar-subset-table`), per precision, initialisation and "
              "widths; the searched widths come from a search started at the trained W2A2 network of the seed",
        select=lambda r: (r["kind"] in ("train", "nce") and r["model"] == "resnet20"
                          and r["dataset"] == "cifar10_subset"),
        key=lambda r: (-r["w_bits"], -r["a_bits"], r["init"] != "scratch", r["kd"],
                       _STRUCTURE_ORDER.index(_structure(r))),
        labels=(("precision", lambda k: _precision((-k[0], -k[1]))),
                ("init", lambda k: _INIT["float" if k[2] else "scratch"] + (" + KD" if k[3] else "")),
                ("widths", lambda k: _STRUCTURES[_STRUCTURE_ORDER[k[4]]])),
        columns=(SEEDS, ACCURACY, MACS, PARAMS, COMMIT),
        # a searched row's trainings take their seed's arch.json, and its widths
        vary=("arch", "widths"),
    ),
    "cifar-subset-paired": PairedTable(
        name="cifar-subset-paired", source="cifar_subset.jsonl",
        about="the W2A2 trainings from scratch of the table above, by the widths they train",
        select=lambda r: (r["kind"] in ("train", "nce") and r["model"] == "resnet20" and r["dataset"] == "cifar10_subset"
                          and (r["w_bits"], r["a_bits"]) == (2, 2) and r["init"] == "scratch" and not r["kd"]),
        key=lambda r: (), labels=(), method=_structure, reference="nce", value=lambda r: r["accuracy"]["test"],
        # What a pair shares is its seed itself: one data order for every row's training, and NCE's and
        # TAS's searches start from that seed's trained W2A2 network. The check on "seed" restates the
        # pairing (it cannot fail); the footnote names what the seed carries.
        pair_on="seed",
    ),
    "compress-cifar": Table(
        name="compress-cifar", source="compress_cifar.jsonl",
        about="ResNet-20 trained in float on the CIFAR-10 subset, compressed by each method to a MACs budget "
              "(the same distilled fine-tuning for all)",
        select=lambda r: r["kind"] == "compress" and r["model"] == "resnet20" and "cifar10_subset" in r["dataset"],
        key=lambda r: (-r["budget"]["flops_ratio"], -r["w_bits"], _METHODS.index(r["method"])),
        labels=(("MACs budget", lambda k: f"{-k[0]:g}x"), ("precision", lambda k: _precision((-k[1], -k[1]))),
                ("method", lambda k: _METHODS[k[2]])),
        columns=(SEEDS, ACCURACY,
                 Column("after derivation (%)", lambda recs: mean_std([r["accuracy"]["derived"] for r in recs], 100)),
                 Column("original (%)", lambda recs: mean_std([r["accuracy"]["original"] for r in recs], 100)),
                 Column("MACs ratio", lambda recs: mean_std([r["costs"]["macs_ratio"] for r in recs], 1, 3)),
                 PARAMS,
                 Column("search + fine-tune (min)", lambda recs: mean_std(
                     [(r["times"].get("search", 0) + r["times"].get("finetune", 0)) / 60 for r in recs], 1, 1)),
                 COMMIT),
        vary=("method",),
    ),
    "compress-cifar-times": Table(
        name="compress-cifar-times", source="compress_cifar.jsonl",
        about="the compressions of the first table: wall time of each phase of `nce-tf compress` (setup: the "
              "trained network, data and super-net loaded, the original evaluated; search: `nce` only; derive: the "
              "compressed network built, its weights inherited, BN re-estimated, evaluated; fine-tune; export: "
              "`.keras`, SavedModel, TFLite files and their check) and the run's CPU time, on 2 cores shared with "
              "other jobs",
        select=lambda r: r["kind"] == "compress" and r["model"] == "resnet20" and "cifar10_subset" in r["dataset"],
        key=lambda r: (-r["budget"]["flops_ratio"], -r["w_bits"], _METHODS.index(r["method"])),
        labels=(("MACs budget", lambda k: f"{-k[0]:g}x"), ("precision", lambda k: _precision((-k[1], -k[1]))),
                ("method", lambda k: _METHODS[k[2]])),
        columns=(SEEDS, *(Column(f"{phase} (min)", lambda recs, phase=phase: _phase_minutes(recs, phase))
                          for phase in COMPRESS_PHASES),
                 Column("CPU (min)", lambda recs: mean_std(
                     [r["provenance"]["times"]["cpu_seconds"] / 60 for r in recs], 1, 1)), COMMIT),
        vary=("method",),
    ),
    "compress-cifar-by-network": NetworkPairedTable(
        name="compress-cifar-by-network", source="compress_cifar.jsonl",
        about="the compressions of the first table, every budget and precision pooled",
        select=lambda r: r["kind"] == "compress" and r["model"] == "resnet20" and "cifar10_subset" in r["dataset"],
        config=lambda r: (-r["budget"]["flops_ratio"], -r["w_bits"]),
        describe=lambda k: f"{-k[0]:g}x {_precision((-k[1], -k[1]))}",
        method=lambda r: r["method"], reference="nce", value=lambda r: r["accuracy"]["test"],
        pair_on="trained_sha256",
    ),
    "compress-cifar-paired": PairedTable(
        name="compress-cifar-paired", source="compress_cifar.jsonl",
        about="the compressions of the table above",
        select=lambda r: r["kind"] == "compress" and r["model"] == "resnet20" and "cifar10_subset" in r["dataset"],
        key=lambda r: (-r["budget"]["flops_ratio"], -r["w_bits"]),
        labels=(("MACs budget", lambda k: f"{-k[0]:g}x"), ("precision", lambda k: _precision((-k[1], -k[1])))),
        method=lambda r: r["method"], reference="nce", value=lambda r: r["accuracy"]["test"],
        pair_on="trained_sha256",
    ),
}

# marker name -> why it is not generated: README blocks made by earlier code, without per-run records.
LEGACY = {}
