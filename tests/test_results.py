"""The results layer (``nce_tf.results``, ``nce-tf results``): records read off real tiny runs, tables
rendered from constructed records against hand-computed cells, README blocks regenerated and checked,
and the real README checked against the committed ``results/``."""

import copy
import dataclasses
import json
import os
import subprocess
import sys

import pytest

from nce_tf import cost
from nce_tf.errors import UsageError
from nce_tf.results import readme as readme_lib
from nce_tf.results import records as records_lib
from nce_tf.results.tables import LEGACY, TABLES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tool(*args, cwd=REPO):
    return subprocess.run([sys.executable, os.path.join(REPO, "tools", "results.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


# --- records of real runs ------------------------------------------------------------------------

def test_records_of_a_training_a_pipeline_and_a_search(tmp_path, capsys):
    from nce_tf.jobs.search import run_search
    from nce_tf.pipeline import run_nce
    from nce_tf.search import SearchConfig
    from nce_tf.train import TrainConfig

    tiny = dict(model="resnet8", synthetic_train_size=64, synthetic_test_size=32, w_bits=2, a_bits=2, epochs=1,
                warmup_epochs=0, batch_size=32, verbose=0, seed=3)
    run_nce(TrainConfig(workdir=str(tmp_path / "nce"), **tiny), SearchConfig(mode="random"), verbose=False)
    run_search(TrainConfig(workdir=str(tmp_path / "search"), **tiny), SearchConfig(mode="wrpn"), verbose=False)

    trained = records_lib.record_of(str(tmp_path / "nce" / "train"), root=str(tmp_path))
    metrics = json.loads((tmp_path / "nce" / "train" / "metrics.json").read_text())
    arch = json.loads((tmp_path / "nce" / "arch.json").read_text())
    counted = cost.count_arch("resnet8", arch["widths"])  # counted afresh, not read from the run
    assert (trained["kind"], trained["run"], trained["model"], trained["dataset"]) == (
        "train", os.path.join("nce", "train"), "resnet8", "synthetic")
    assert (trained["w_bits"], trained["a_bits"], trained["init"], trained["kd"]) == (2, 2, "scratch", False)
    assert trained["seeds"] == {"seed": 3} and trained["widths"] == arch["widths"]
    assert (trained["costs"]["macs"], trained["costs"]["params"]) == (counted.macs, counted.params)
    assert trained["accuracy"]["test"] == metrics["test_accuracy"]
    assert trained["provenance"] == metrics["provenance"]
    assert trained["settings"] == json.loads((tmp_path / "nce" / "train" / "config.json").read_text())

    piped = records_lib.record_of(str(tmp_path / "nce"))
    assert piped["kind"] == "nce" and piped["accuracy"] == trained["accuracy"]
    assert piped["search"]["mode"] == "random" and piped["search"]["provenance"] == arch["provenance"]
    assert piped["seeds"] == {"seed": 3, "split_seed": json.loads(
        (tmp_path / "nce" / "search_config.json").read_text())["split_seed"]}

    searched = records_lib.record_of(str(tmp_path / "search"))
    assert searched["kind"] == "search" and "accuracy" not in searched
    # a training of a search's arch.json file (--arch) records that search's mode when it runs
    from nce_tf.jobs import run_training

    run_training(TrainConfig(workdir=str(tmp_path / "from_arch"), arch=str(tmp_path / "search" / "arch.json"),
                             **{**tiny, "model": ""}))
    assert records_lib.record_of(str(tmp_path / "from_arch"))["structure"] == "wrpn"
    assert searched["widths"] == json.loads((tmp_path / "search" / "arch.json").read_text())["widths"]

    # Appended once: the same run collected again is not added twice; the file reads back.
    out = str(tmp_path / "results" / "r.jsonl")
    assert records_lib.append_records(out, [trained, piped]) == (2, 0)
    assert records_lib.append_records(out, [piped, searched]) == (1, 1)
    assert [r["kind"] for r in records_lib.read_records(out)] == ["train", "nce", "search"]

    # A run started from a float network (its settings name one) is a float-init record, KD with a teacher.
    floated = tmp_path / "floated"
    floated.mkdir()
    (floated / "metrics.json").write_text((tmp_path / "nce" / "train" / "metrics.json").read_text())
    (floated / "config.json").write_text(json.dumps({**trained["settings"], "init_from": "runs/f", "teacher": "runs/f"}))
    assert (records_lib.record_of(str(floated))["init"], records_lib.record_of(str(floated))["kd"]) == ("float", True)

    # What a training's widths came from: the mode of the search whose arch it trained (its metrics.json
    # says, written when it ran), else the original's; for a run made before trainings recorded it, read
    # off the arch.json its settings name.
    assert piped["structure"] == trained["structure"] == metrics["structure"] == "random"
    assert searched.get("structure") is None
    (floated / "metrics.json").write_text(json.dumps({k: v for k, v in metrics.items() if k != "structure"}))
    (floated / "config.json").write_text(json.dumps({**trained["settings"], "arch": str(tmp_path / "nce" / "arch.json")}))
    assert records_lib.record_of(str(floated))["structure"] == "random"
    (floated / "config.json").write_text(json.dumps({**trained["settings"], "arch": ""}))
    assert records_lib.record_of(str(floated))["structure"] == "original"
    (floated / "config.json").write_text(json.dumps({**trained["settings"], "arch": str(tmp_path / "gone.json")}))
    assert records_lib.record_of(str(floated))["structure"] == "arch"

    # A run without provenance (made before nce-tf recorded it) is refused, by the tool as one line, and
    # nothing is written.
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text((tmp_path / "nce" / "train" / "config.json").read_text())
    (old / "metrics.json").write_text(json.dumps({k: v for k, v in metrics.items() if k != "provenance"}))
    proc = _tool("collect", str(tmp_path / "search"), str(old), f"--out={tmp_path}/new.jsonl")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no provenance" in proc.stderr
    assert not os.path.exists(tmp_path / "new.jsonl")
    proc = _tool("collect", str(tmp_path / "search"), f"--out={tmp_path}/new.jsonl")
    assert proc.returncode == 0 and len(records_lib.read_records(str(tmp_path / "new.jsonl"))) == 1

    # A run still going (a queue's next directory): refused, or with --skip_unfinished named and left out;
    # skipping never hides a finished run's problem (the run without provenance is still refused).
    going = tmp_path / "going"
    going.mkdir()
    (going / "config.json").write_text("{}")
    proc = _tool("collect", str(tmp_path / "nce"), str(going), f"--out={tmp_path}/more.jsonl")
    assert proc.returncode == 2 and "Not a finished run" in proc.stderr and not os.path.exists(tmp_path / "more.jsonl")
    proc = _tool("collect", str(tmp_path / "nce"), str(going), f"--out={tmp_path}/more.jsonl", "--skip_unfinished")
    assert proc.returncode == 0 and f"not finished, left out: {going}" in proc.stdout
    assert [r["kind"] for r in records_lib.read_records(str(tmp_path / "more.jsonl"))] == ["nce"]
    proc = _tool("collect", str(old), str(going), f"--out={tmp_path}/more.jsonl", "--skip_unfinished")
    assert proc.returncode == 2 and "no provenance" in proc.stderr


@pytest.mark.parametrize("args, needle", [
    ((), "Allowed: collect, readme"),
    (("collect", "--out=x.jsonl"), "one or more run directories"),
    (("collect", "."), "Pass --out"),
    (("collect", "{tmp}", "--out={tmp}/x.jsonl"), "Not a finished run"),
    (("readme", "--readme={tmp}/none.md"), "README not found"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, needle):
    proc = _tool(*[a.format(tmp=tmp_path) for a in args])
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert needle in proc.stderr


# --- tables from constructed records ----------------------------------------------------------------

SETTINGS = {"model": "resnet20", "dataset": "npz:cifar10_subset.npz", "epochs": 15, "lr": 0.1}


def _rec(w, a, init, seed, acc, commit="a" * 40, dirty=False, **settings):
    """A record as `collect` writes one (constructed: the table code reads only these fields)."""
    extra = {"init_from": f"runs/w32a32_s{seed}", "lr": 0.01} if init == "float" else {}
    prov = {"nce_tf": "0.1.0", "commit": commit, "dirty": dirty,
            "versions": {"python": "3.11.7", "tensorflow": "2.21.0", "keras": "3.15.1", "numpy": "2.4.6"},
            "times": {"sittings": [{"commit": commit, "dirty": dirty}]}}
    return {"format": records_lib.FORMAT, "id": f"{w}{a}{init}{seed}", "kind": "train", "run": f"r/{w}{init}{seed}",
            "model": "resnet20", "dataset": "cifar10_subset", "w_bits": w, "a_bits": a, "init": init, "kd": False,
            "seeds": {"seed": seed}, "costs": {"macs": 40813184, "params": 272474},
            "accuracy": {"test": acc}, "settings": {**SETTINGS, **extra, **settings, "seed": seed,
                                                     "w_bits": w, "a_bits": a}, "provenance": prov}


RECORDS = [_rec(2, 2, "scratch", s, acc) for s, acc in ((0, 0.60), (1, 0.62), (2, 0.64))] + [
    _rec(32, 32, "scratch", s, acc) for s, acc in ((0, 0.70), (1, 0.71))] + [
    _rec(2, 2, "float", 0, 0.65), _rec(2, 2, "float", 1, 0.66, commit="b" * 40)] + [
    {**_rec(2, 2, "scratch", 9, 0.1), "model": "resnet8"},  # not a ResNet-20: not in the table
    {**_rec(2, 2, "scratch", 9, 0.1), "dataset": "synthetic"}]

# By hand: 60, 62, 64 -> 62.00 +- 2.00 (sample std); 70, 71 -> 70.50 +- 0.71; 65, 66 -> 65.50 +- 0.71;
# 40813184 MACs -> 40.81 M, 272474 params -> 272.5 K (one value: every seed's the same).
PREMISE_ROWS = """\
| precision | init | seeds | test accuracy (%) | MACs (M) | PARAMs (K) | commit |
|---|---|---|---|---|---|---|
| W32A32 | scratch | 2 (0, 1) | 70.50 +- 0.71 | 40.81 | 272.5 | aaaaaaa |
| W2A2 | scratch | 3 (0, 1, 2) | 62.00 +- 2.00 | 40.81 | 272.5 | aaaaaaa |
| W2A2 | float init | 2 (0, 1) | 65.50 +- 0.71 | 40.81 | 272.5 | aaaaaaa, bbbbbbb |
"""


def test_premise_table_rows_and_footnote():
    text = TABLES["premise-trained"].render(RECORDS)
    rows, footnote = text.split("\n\n")
    assert rows + "\n" == PREMISE_ROWS
    assert footnote.startswith("Generated by `nce-tf results readme` from `results/premise_trained.jsonl` (7 runs)")
    assert "Commit aaaaaaa (nce-tf 0.1.0; Python 3.11.7, TensorFlow 2.21.0, Keras 3.15.1, numpy 2.4.6)." in footnote
    # Only the row with a run at another commit says so.
    assert footnote.rstrip().endswith("From another commit than the rest: W2A2 float init (bbbbbbb).")
    # A dirty run is named as such in its row and the footnote.
    dirty = TABLES["premise-trained"].render([_rec(2, 2, "scratch", 0, 0.6, dirty=True)])
    assert "| aaaaaaa+dirty |" in dirty and "uncommitted changes" in dirty


def test_a_row_never_mixes_recipes():
    mixed = [_rec(2, 2, "scratch", 0, 0.6), _rec(2, 2, "scratch", 1, 0.6, epochs=30)]
    with pytest.raises(UsageError, match=r"differ in settings other than the seed \(epochs\)"):
        TABLES["premise-trained"].render(mixed)
    # ... unless the table lets that setting vary (a search's structure differs from seed to seed)
    assert "| 2 (0, 1) |" in dataclasses.replace(TABLES["premise-trained"], vary=("epochs",)).render(mixed)
    with pytest.raises(UsageError, match="No record"):
        TABLES["premise-trained"].render(RECORDS[-2:])


def _compressed(method, seed, acc, trained=None):
    """A compression's record as `collect` writes one (constructed)."""
    rec = _rec(32, 32, "scratch", seed, acc)
    rec["settings"] = {"lr": 0.1, "method": method, "seed": seed,
                       "trained_sha256": trained or f"sha-of-float-net-{seed}"}
    return {**rec, "kind": "compress", "method": method, "budget": {"flops_ratio": 0.5}, "run": f"c/{method}{seed}"}


def test_cifar_subset_table_rows_by_initialisation_and_widths():
    def searched(mode, seed, acc):  # a training's settings name its seed's arch.json and widths
        rec = _rec(2, 2, "scratch", seed, acc, arch=f"runs/{mode}_s{seed}/arch.json", widths=[16 + seed, 32])
        return {**rec, "structure": mode}

    records = [_rec(2, 2, "scratch", s, a) for s, a in ((0, 0.60), (1, 0.62))] + [
        searched("tas", 0, 0.58), searched("tas", 1, 0.60), searched("nce", 0, 0.61), searched("nce", 1, 0.65),
        {**_rec(2, 2, "scratch", 0, 0.59), "kind": "nce", "search": {"mode": "wrpn"}},
        _rec(32, 32, "scratch", 0, 0.70), _rec(2, 2, "float", 0, 0.66),
        {**_rec(2, 2, "scratch", 0, 0.1), "kind": "search"}]  # a search has no accuracy: not a row
    text = TABLES["cifar-subset"].render(records)
    rows = [[c.strip() for c in line.strip("|").split("|")][:5] for line in text.split("\n\n")[0].splitlines()[2:]]
    assert rows == [["W32A32", "scratch", "original", "1 (0)", "70.00"],
                    ["W2A2", "scratch", "original", "2 (0, 1)", "61.00 +- 1.41"],
                    ["W2A2", "scratch", "NCE's, searched", "2 (0, 1)", "63.00 +- 2.83"],
                    ["W2A2", "scratch", "TAS's (1X), searched", "2 (0, 1)", "59.00 +- 1.41"],
                    ["W2A2", "scratch", "WRPN's (uniform)", "1 (0)", "59.00"],
                    ["W2A2", "float init", "original", "1 (0)", "66.00"]]


def test_cifar_subset_paired_table_takes_the_w2a2_trainings_from_scratch_by_widths():
    def searched(mode, seed, acc):
        rec = _rec(2, 2, "scratch", seed, acc, arch=f"runs/{mode}_s{seed}/arch.json", widths=[16 + seed, 32])
        return {**rec, "structure": mode, "run": f"r/{mode}{seed}"}

    records = [_rec(2, 2, "scratch", s, a) for s, a in ((0, 0.60), (1, 0.62), (2, 0.64))]
    records += [searched("nce", s, a) for s, a in ((0, 0.61), (1, 0.65), (2, 0.66))]
    records += [searched("tas", s, a) for s, a in ((0, 0.58), (1, 0.60), (2, 0.67))]
    records += [{**_rec(2, 2, "scratch", 0, 0.59), "kind": "nce", "search": {"mode": "wrpn"}, "run": "r/wrpn0"},
                _rec(32, 32, "scratch", 0, 0.70), _rec(2, 2, "float", 0, 0.66)]  # other rows: not paired here
    rows = TABLES["cifar-subset-paired"].render(records).split("\n\n")[0].splitlines()[2:]
    # nce - original: +1, +3, +2 pp (mean 2, se 0.5774, t 4.3027 -> +-2.48); nce - tas: +3, +5, -1 (mean 2.33,
    # sd 3.055, se 1.764 -> +-7.59; |sum| >= 7 in the patterns (+-3, +-5, +-1) of sums +-9, +-7: 4 of 8, p = 0.5)
    assert rows == [
        "| original | 3 | +1.00, +3.00, +2.00 | +2.00 | [-0.48, +4.48] | 0.25 (0.25) | none at n = 3 | not resolved |",
        "| tas | 3 | +3.00, +5.00, -1.00 | +2.33 | [-5.26, +9.92] | 0.5 (0.25) | none at n = 3 | not resolved |",
        "| wrpn | 1 | +2.00 | +2.00 | - | - | - | not tested (one seed) |"]


def test_paired_table_differences_by_seed():
    table = TABLES["compress-cifar-paired"]
    records = [_compressed("nce", s, a) for s, a in ((0, 0.70), (1, 0.72), (2, 0.74))]
    records += [_compressed("l1_uniform", s, a) for s, a in ((0, 0.69), (1, 0.70), (2, 0.71))]
    records += [_compressed("scratch", 0, 0.40)]
    rows = table.render(records).split("\n\n")[0].splitlines()[2:]
    # By hand: d = +1, +2, +3 pp; mean 2; se = 1 / sqrt(3) = 0.5774; t(0.975, 2) = 4.3027 -> +-2.48;
    # all three of one sign: 2 of the 8 sign patterns, p = p_min = 0.25, so no effect of any size could
    # resolve and no detectable difference is claimed.  One shared seed with scratch: nothing to test.
    assert rows[0] == ("| 0.5x | W32A32 | l1_uniform | 3 | +1.00, +2.00, +3.00 | +2.00 | [-0.48, +4.48] "
                       "| 0.25 (0.25) | none at n = 3 | not resolved |")
    assert rows[1] == "| 0.5x | W32A32 | scratch | 1 | +30.00 | +30.00 | - | - | - | not tested (one seed) |"
    # A pair whose members started from different networks shares nothing: refused.
    records[3] = _compressed("l1_uniform", 0, 0.69, trained="another network")
    with pytest.raises(UsageError, match="does not share its trained_sha256"):
        table.render(records)
    with pytest.raises(UsageError, match="Two records of seed 0"):
        table.render(records[:3] + [records[0]])
    # ... and so does a pair whose records do not name their network at all
    for rec in (records[0], records[3]):
        rec["settings"].pop("trained_sha256")
    with pytest.raises(UsageError, match=r"Received: None in 'c/nce0', None in 'c/l1_uniform0'"):
        table.render(records[:6])


def test_paired_cells_detectable_difference_only_where_the_sign_flip_test_can_resolve():
    from nce_tf.results.tables import paired_cells

    # d = 1..6: mean 3.5, sd 1.8708, se 0.7638; t(0.975, 5) = 2.5706 -> +-1.963; all of one sign: p = 2 / 64;
    # detectable at 80%: (2.5706 + t(0.8, 5) = 0.9195) * 0.7638 = 2.666.
    assert paired_cells([1, 2, 3, 4, 5, 6]) == ["+3.50", "[+1.54, +5.46]", "0.0312 (0.0312)", "2.67", "resolved"]
    # five units: p_min = 2 / 32 = 0.0625 >= 0.05, so nothing can resolve at any effect size
    assert paired_cells([1, 2, 3, 4, 5])[3:] == ["none at n = 5", "not resolved"]


# --- README blocks ---------------------------------------------------------------------------------

README = """\
# Title

<!-- old-table:begin -->
written by hand long ago
<!-- old-table:end -->

Text between.

<!-- premise-trained:begin -->
stale
<!-- premise-trained:end -->
Tail.
"""


def _results(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "premise_trained.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return str(results)


def test_readme_blocks_regenerate_and_drift_is_caught(tmp_path, monkeypatch):
    monkeypatch.setitem(LEGACY, "old-table", "written by hand long ago")
    results = _results(tmp_path)
    path = tmp_path / "README.md"
    path.write_text(README)
    report = readme_lib.update_readme(str(path), results, check=True)
    # (the tables defined but absent from this README come after its blocks, as "not in README")
    assert [(n, s) for n, s, _ in report][:2] == [("old-table", "legacy"), ("premise-trained", "drifted")]
    assert {s for _, s, _ in report[2:]} <= {"not in README"}
    assert path.read_text() == README  # --check writes nothing

    assert [s for _, s, _ in readme_lib.update_readme(str(path), results)][:2] == ["legacy", "regenerated"]
    table = TABLES["premise-trained"].render(records_lib.read_records(os.path.join(results, "premise_trained.jsonl")))
    assert path.read_text() == README.replace("stale\n", table)  # only the generated block changed
    assert [s for _, s, _ in readme_lib.update_readme(str(path), results, check=True)][:2] == ["legacy", "up to date"]

    # One cell edited by hand: drifted, by the library and by the tool (exit 1, nothing written).
    path.write_text(path.read_text().replace("62.00 +- 2.00", "62.10 +- 2.00"))
    assert [s for _, s, _ in readme_lib.update_readme(str(path), results, check=True)][1] == "drifted"
    # (the tool's own process declares no "old-table": its README without that block)
    path.write_text(path.read_text().replace("<!-- old-table:begin -->\nwritten by hand long ago\n<!-- old-table:end -->\n", ""))
    edited = path.read_text()
    proc = _tool("readme", "--check", f"--readme={path}", f"--results={results}")
    assert proc.returncode == 1 and "premise-trained" in proc.stderr and path.read_text() == edited
    proc = _tool("readme", f"--readme={path}", f"--results={results}")
    assert proc.returncode == 0 and "premise-trained: regenerated" in proc.stdout and "62.00 +- 2.00" in path.read_text()


@pytest.mark.parametrize("text, needle", [
    ("<!-- mystery:begin -->\nx\n<!-- mystery:end -->\n", "'mystery' is neither a generated table nor declared legacy"),
    ("<!-- premise-trained:begin -->\nx\n", "premise-trained:begin without its end"),
    ("<!-- premise-trained:end -->\n", "premise-trained:end without its begin"),
])
def test_readme_blocks_that_nobody_generates_are_refused(tmp_path, text, needle):
    path = tmp_path / "README.md"
    path.write_text(text)
    with pytest.raises(UsageError, match=needle):
        readme_lib.update_readme(str(path), _results(tmp_path), check=True)


def test_the_readme_matches_the_committed_records():
    # No README block made by earlier code without per-run records is left (LEGACY could declare one).
    assert LEGACY == {}
    path = os.path.join(REPO, "README.md")
    with open(path, encoding="utf-8") as f:
        in_readme = readme_lib.blocks(f.read())
    report = readme_lib.update_readme(path, os.path.join(REPO, "results"), check=True)
    # Every marker pair is accounted for, and every generated one equals its records' table.
    assert [n for n, s, _ in report if s != "not in README"] == sorted(in_readme, key=lambda n: in_readme[n])
    for name, status, _ in report:
        assert status == ("legacy" if name in LEGACY else "not in README" if name not in in_readme
                          else "up to date"), (name, status)
    assert {n for n, s, _ in report if s == "not in README"} == set(readme_lib.GENERATED) - set(in_readme)


def test_records_survive_a_round_trip_unchanged(tmp_path):
    out = str(tmp_path / "r.jsonl")
    records = copy.deepcopy(RECORDS[:3])
    assert records_lib.append_records(out, records) == (3, 0)
    assert records_lib.read_records(out) == RECORDS[:3]
    (tmp_path / "bad.jsonl").write_text(json.dumps(RECORDS[0]) + "\n{not json\n")
    with pytest.raises(UsageError, match="Line 2"):
        records_lib.read_records(str(tmp_path / "bad.jsonl"))


def test_cifar_subset_table_command_tabulates_the_finished_runs(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "nce_tf", "cifar-subset-table", "--finished_only", f"--out={out}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: No run of the table has finished yet. Received: out={str(out)!r}"
    out.mkdir()
    # the W2A2 row's three runs, and a run of an earlier recipe in the same --out (not this plan's)
    mine = [{**rec, "run": f"w2a2_s{rec['seeds']['seed']}"} for rec in RECORDS[:3]]
    older = {**_rec(2, 2, "scratch", 0, 0.10), "run": "nce_w2a2_s0", "kind": "nce", "search": {"mode": "nce"}}
    records_lib.append_records(str(out / "records.jsonl"), [*mine, older])
    proc = subprocess.run([sys.executable, "-m", "nce_tf", "cifar-subset-table", "--finished_only", f"--out={out}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    table = (out / "table.md").read_text()
    assert table == TABLES["cifar-subset"].render(mine) and table in proc.stdout
    assert "| W2A2 | scratch | original | 3 (0, 1, 2) | 62.00 +- 2.00 |" in table and "NCE" not in table


def test_quickstart_table_times_a_pipeline_as_its_search_plus_its_training():
    def rec(kind, bits, seed, acc, wall, search_wall=None, ratio=None):
        arch = {"arch": f"runs/qs_s{seed}/arch.json", "widths": [8 + seed, 16]} if kind == "nce" else {}
        r = {**_rec(bits, bits, "scratch", seed, acc, **arch), "kind": kind, "dataset": "synthetic"}
        r["provenance"] = {**r["provenance"], "times": {**r["provenance"]["times"], "wall_seconds": wall}}
        if kind == "nce":
            r["search"] = {"macs_ratio": ratio, "provenance": {"times": {"wall_seconds": search_wall}}}
        return r

    records = [rec("nce", 2, 0, 0.97, 60.0, 100.0, 0.98), rec("nce", 2, 1, 0.95, 70.0, 110.0, 0.96),
               rec("train", 2, 0, 0.96, 50.0), rec("train", 32, 0, 0.99, 40.0)]
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in TABLES["quickstart"].render(records).split("\n\n")[0].splitlines()[2:]]
    assert [r[0].split("`")[1] for r in rows] == ["nce-tf nce --flagfile=quickstart", "nce-tf train --flagfile=quickstart",
                                                  "nce-tf train --flagfile=quickstart --w_bits=32 --a_bits=32"]
    # the pipeline: 160 and 180 s (search + training), MACs ratio of its searches' structures
    assert rows[0][1:5] == ["2 (0, 1)", "96.00 +- 1.41", "0.970 +- 0.014", "170 +- 14"]
    assert rows[1][1:5] == ["1 (0)", "96.00", "1.000", "50"] and rows[2][4] == "40"


def test_compress_times_table_minutes_per_phase_and_no_search_for_the_l1_rules():
    def timed(method, seed, phases, cpu):
        rec = _compressed(method, seed, 0.7)
        rec["times"] = phases
        rec["provenance"] = {**rec["provenance"], "times": {"cpu_seconds": cpu}}
        return rec

    records = [timed("nce", 0, {"setup": 6, "search": 420, "derive": 18, "finetune": 150, "export": 24}, 600),
               timed("nce", 1, {"setup": 18, "search": 540, "derive": 18, "finetune": 210, "export": 36}, 720),
               timed("l1_uniform", 0, {"setup": 12, "derive": 30, "finetune": 180, "export": 30}, 240)]
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in TABLES["compress-cifar-times"].render(records).split("\n\n")[0].splitlines()[2:]]
    # By hand, minutes: nce setup (0.1, 0.3) -> 0.2 +- 0.14; search (7, 9) -> 8.0 +- 1.41; derive 0.3 twice;
    # fine-tune (2.5, 3.5) -> 3.0 +- 0.71; export (0.4, 0.6) -> 0.5 +- 0.14; CPU (10, 12) -> 11.0 +- 1.41.
    assert rows[0][2:10] == ["nce", "2 (0, 1)", "0.2 +- 0.1", "8.0 +- 1.4", "0.3", "3.0 +- 0.7", "0.5 +- 0.1",
                             "11.0 +- 1.4"]
    assert rows[1][2:10] == ["l1_uniform", "1 (0)", "0.2", "-", "0.5", "3.0", "0.5", "4.0"]
    # a run that did not time a phase is left out of that phase's cell, which says so (not counted as 0 min)
    records[1]["times"].pop("export")
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in TABLES["compress-cifar-times"].render(records).split("\n\n")[0].splitlines()[2:]]
    assert rows[0][8] == "0.4 (1 of 2 runs)"


def test_network_paired_table_one_unit_per_trained_network_over_its_configurations():
    table = TABLES["compress-cifar-by-network"]

    def rec(method, net, ratio, acc):
        r = _compressed(method, {"A": 0, "B": 1, "C": 2}[net], acc, trained=f"sha-{net}")
        return {**r, "budget": {"flops_ratio": ratio}, "run": f"c/{method}{net}{ratio}"}

    # networks A and B compressed at 0.5x and 0.25x, C at 0.25x only; l1_uniform lacks B at 0.25x
    acc = {("nce", "A", 0.5): 0.70, ("nce", "A", 0.25): 0.60, ("nce", "B", 0.5): 0.66, ("nce", "B", 0.25): 0.50,
           ("nce", "C", 0.25): 0.55, ("l1_uniform", "A", 0.5): 0.72, ("l1_uniform", "A", 0.25): 0.64,
           ("l1_uniform", "B", 0.5): 0.70, ("l1_uniform", "C", 0.25): 0.54}
    records = [rec(m, n, r, a) for (m, n, r), a in acc.items()]
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in table.render(records).split("\n\n")[0].splitlines()[2:]]
    # By hand (pp): A: mean(-2, -4) = -3; B: only 0.5x is shared: -4; C: +1. Mean -2, sd = sqrt(7) = 2.6458,
    # se = 1.5275, t(0.975, 2) = 4.3027 -> [-8.57, +4.57]; sign-flip on magnitudes (3, 4, 1): the 8 patterns'
    # sums are +-8, +-6, +-2, 0, 0, and |sum| >= 6 (observed -6) in 4 of them: p = 0.5 (p_min 2 / 8).
    assert rows == [["l1_uniform", "3", "2, 1, 1", "-3.00, -4.00, +1.00", "-2.00", "[-8.57, +4.57]", "0.5 (0.25)",
                     "none at n = 3", "not resolved"]]
    with pytest.raises(UsageError, match="Two records of one network"):
        table.render(records + [rec("nce", "A", 0.5, 0.1)])
    unnamed = rec("nce", "C", 0.5, 0.5)
    unnamed["settings"].pop("trained_sha256")
    with pytest.raises(UsageError, match="without its trained_sha256"):
        table.render(records + [unnamed])
    one = table.render(records[:2] + [rec("l1_uniform", "A", 0.5, 0.72)])
    assert "| not tested (one network) |" in one
