"""Analysis tables (``nce_tf.results.summary_tables``): each rendered from a constructed analysis file
against cells worked out by hand, the footnote's commits and versions, and a missing source as a
one-line error. The README's own blocks against the committed files: ``tests/test_results.py``."""

import json
import os

import pytest

from nce_tf.errors import UsageError
from nce_tf.results.summary_tables import SUMMARY_TABLES


def _prov(commit, dirty=False):
    return {"commit": commit * 40, "dirty": dirty, "nce_tf": "0.1.0",
            "versions": {"python": "3.11.7", "tensorflow": "2.21.0", "keras": "3.15.1", "numpy": "2.4.6"}}


def _write(tmp_path, source, data):
    path = tmp_path / source
    path.parent.mkdir(parents=True, exist_ok=True)
    if source.endswith(".jsonl"):
        path.write_text("".join(json.dumps(d) + "\n" for d in data))
    else:
        path.write_text(json.dumps(data))


def _render(tmp_path, name, data):
    table = SUMMARY_TABLES[name]
    _write(tmp_path, table.source, data)
    text = table.render_from(str(tmp_path))
    rows, footnote = text.split("\n\n")
    return [[c.strip() for c in line.strip("|").split("|")] for line in rows.splitlines()], footnote


def test_known_answer_rows(tmp_path):
    def seed(s, ce1, ce2, ce4, neck_half, neck_double, others):
        probe = [{"layer": "neck", "ratio": 0.5, "delta_ce": neck_half}, {"layer": "neck", "ratio": 2.0,
                                                                          "delta_ce": neck_double}]
        probe += [{"layer": f"c{i}", "ratio": 0.5, "delta_ce": v} for i, v in enumerate(others)]
        return {"seed": s, "retrained": {"1": {"ce": ce1}, "2": {"ce": ce2}, "4": {"ce": ce4}}, "probe": probe}

    data = {"seeds": [seed(0, 2.0, 1.8, 1.6, 0.3, 0.0, [0.1, -0.05]), seed(1, 2.3, 2.0, 1.9, 0.5, 0.02, [0.2, 0.0])],
            "provenance": _prov("a")}
    rows, footnote = _render(tmp_path, "premise-known-answer", data)
    assert rows[0][-1] == "probe, other layers (2 changes)"
    # narrowing: (2.0 - 1.8, 2.3 - 2.0) = (0.2, 0.3); widening: (-0.2, -0.1); neck probes as given
    assert rows[2] == ["mean of 2 seeds", "+0.250", "-0.150", "+0.400", "+0.010", "-0.050 to +0.200"]
    assert rows[3] == ["range", "+0.200 to +0.300", "-0.200 to -0.100", "+0.300 to +0.500", "+0.000 to +0.020", ""]
    assert "Commit aaaaaaa (nce-tf 0.1.0; Python 3.11.7" in footnote


def test_ground_truth_rows_are_sorted_by_the_probe_and_name_every_training(tmp_path):
    data = {"W2A2": {"seeds": [100, 101], "changes": [["a_conv", 0.5], ["b_conv", 0.5]], "one_shot": [-0.01, -0.05],
                     "accuracy": {"original@1.0": {"100": 0.70, "101": 0.60}, "a_conv@0.5": {"100": 0.69, "101": 0.61},
                                  "b_conv@0.5": {"100": 0.65, "101": 0.58}}}}
    for i, commit in enumerate("bbc"):
        run = tmp_path / "premise_ground_truth" / "w2a2" / f"run{i}"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({"provenance": _prov(commit, dirty=i == 2)}))
    rows, footnote = _render(tmp_path, "premise-ground-truth", data)
    assert rows[0][2:] == ["retrained, seed 100", "retrained, seed 101", "retrained, mean"]
    # b: (0.65 - 0.70, 0.58 - 0.60) = (-5, -2) points, mean -3.5; a: (-1, +1), mean 0; b's probe first
    assert rows[2] == ["`b_conv` at 0.5x (W2A2)", "-5.00", "-5.00", "-2.00", "-3.50"]
    assert rows[3] == ["`a_conv` at 0.5x (W2A2)", "-1.00", "-1.00", "+1.00", "+0.00"]
    assert "Commit bbbbbbb and ccccccc+dirty (" in footnote and footnote.rstrip().endswith("tracked files.")


def _search(bits, seed, kendall, ratio, commit="d"):
    return {"w_bits": bits, "a_bits": bits, "seed": seed, "mode": "tas", "kendall_ce": kendall,
            "kendall_ce_mean": sum(kendall) / len(kendall), "grad_norm_ratio": ratio, "layers_expanded": seed,
            "cost_active": {"macs": {"up": 0.25 * seed, "down": 0.0}},
            "trajectory": [{"accuracy": 0.1 + 0.01 * seed}, {"accuracy": 0.2}], "provenance": _prov(commit)}


def test_precision_comparison_rows_recompute_the_statistics(tmp_path):
    # W2A2 means 0.1, 0.2, 0.3 (mean 0.2); W32A32 0.4, 0.5, 0.6 (mean 0.5): difference -0.3, each side's
    # variance of the mean 0.01 / 3, SE sqrt(2 * 0.01 / 3) = 0.08165, Welch nu = 4, t_{0.975, 4} = 2.7764:
    # half-width 0.2267; complete separation of 3 vs 3: exact permutation p = 2 / 20 = 0.1.
    data = [_search(2, s, [0.1 * (s + 1), 0.1 * (s + 1)], 1.0) for s in range(3)]
    data += [_search(32, s, [0.1 * (s + 4), 0.1 * (s + 4)], 2.0) for s in range(3)]
    rows, _ = _render(tmp_path, "premise-sp3", data)
    kendall = rows[2]
    assert kendall[1:3] == ["+0.10, +0.20, +0.30", "+0.40, +0.50, +0.60"]
    assert kendall[3:5] == ["-0.300 [-0.527, -0.073]", "0.1"]
    # rows with a positive score, of two; the trajectory's accuracies; the MACs-up share; expansions
    assert rows[4][1] == "2 of 2, 2 of 2, 2 of 2"
    assert rows[5][1] == "10/20, 11/20, 12/20"
    assert rows[6][1] == "0.00, 0.25, 0.50" and rows[7][2] == "0, 1, 2"
    rows, _ = _render(tmp_path, "premise-fig4c", data)
    assert rows[2][0].startswith("TAS:") and rows[2][3:5] == ["-0.300 [-0.527, -0.073]", "0.1"]


def test_precision_rows_need_both_precisions(tmp_path):
    with pytest.raises(UsageError, match="Expected W2A2 and W32A32"):
        _render(tmp_path, "premise-fig4c", [_search(2, s, [0.1], 1.0) for s in range(3)])


def test_export_rows(tmp_path):
    card = {"w_bits": 2, "files": {"model_float.tflite": 1000, "model_int8.tflite": 250, "model_int4.tflite": 200,
                                   "weights_2bit.npz": 80},
            "int4": {"int4_layers": ["a", "b"], "filter_bytes": {"int8": 100, "int4": 50}}, "provenance": _prov("e")}
    rows, _ = _render(tmp_path, "export-resnet20-w2a2", card)
    assert rows[3] == ["`model_int8.tflite`", "250", "4.0x smaller"]
    assert rows[4] == ["`model_int4.tflite`", "200", "5.0x smaller (its 2 2-bit filters: 50 bytes instead of 100)"]


def test_tfmot_rows(tmp_path):
    def run(seed, nce, tfmot):
        return {"seed": seed, "step_ratio": 0.5, "memory_ratio": 1.0, "provenance": _prov("f"),
                "nce": {"test_accuracy": nce, "step_s": 0.2, "peak_rss_mb": 1000.0},
                "tfmot": {"test_accuracy": tfmot, "step_s": 0.4, "peak_rss_mb": 1000.0}}

    rows, _ = _render(tmp_path, "tfmot-compare", [run(1, 0.5, 0.1), run(0, 0.4, 0.2), run(2, 0.6, 0.3)])
    assert rows[0][1] == "nce-tf (seeds 0, 1, 2)"
    # paired by seed: differences 20, 40, 30 (mean 30, sd 10, SE 5.774, t_{0.975, 2} = 4.3027: half-width
    # 24.84); all three positive: sign-flip p = 2 / 8 = 0.25, also the smallest p three pairs allow
    assert rows[2][1:4] == ["40.0, 50.0, 60.0", "20.0, 10.0, 30.0", "20.0, 40.0, 30.0"]
    assert rows[2][4:6] == ["+30.00 [+5.16, +54.84]", "0.25 (0.25)"] and rows[2][7] == "not resolved"
    assert rows[3][1:4] == ["200, 200, 200", "400, 400, 400", "ratio 0.50, 0.50, 0.50"]


def test_a_missing_source_is_a_one_line_error(tmp_path):
    with pytest.raises(UsageError, match="does not read") as e:
        SUMMARY_TABLES["premise-fig4c"].render_from(str(tmp_path))
    assert "\n" not in str(e.value) and os.path.join(str(tmp_path), "fig4c", "summary.json") in str(e.value)


def test_study_block_recomputes_its_statistics_from_the_rows(tmp_path):
    def row(method, structure, seed, acc, commit="g"):
        return {"method": method, "structure": structure, "train_seed": seed, "test_accuracy": acc,
                "widths": [16] if method == "original" else [8 + int(structure[-1])],
                "macs_ratio": 1.0, "params_ratio": 1.0, "layers_expanded": 0, "provenance": _prov(commit),
                "search_provenance": _prov("h") if method != "original" else None}

    rows = [row("nce", f"nce_s{s}", t, 0.60 + 0.01 * s + 0.002 * t) for s in range(3) for t in range(2)]
    rows += [row("original", "original", t, a) for t, a in enumerate((0.58, 0.60))]
    data = {"study": {"methods": ["nce", "original"], "reference": "nce", "level": 0.95, "resamples": 1000},
            "rows": rows, "widths": None,
            # a stale summary in the file is never copied: the block is made from the rows
            "summary": [{"method": "nce", "accuracy_mean": 0.99}], "comparisons": []}
    text = SUMMARY_TABLES["study-r8-from-trained"].render_from(str(_written(tmp_path, data)))
    lines = text.splitlines()
    # nce: structure means 0.601, 0.611, 0.621 (mean 61.10, std 1.00); its six trainings 61.10 +- 0.90
    assert lines[2].startswith("| nce | 3 | 6 | 61.10 +- 0.90 | 61.10 +- 1.00 |")
    # nce minus the original (one structure, two trainings: SE sqrt(2e-4 / 2) = 0.01), Welch t against it
    assert "| original | +2.10 |" in text and "Welch t against one structure" in text
    assert "Commit ggggggg and hhhhhhh (" in text
    # the structures share no seed stream here: nce's structures never tie (their accuracies all differ)
    assert "one seed: 0 of 12 pairs" in text
    # WRPN at the original's widths is the original: listed, but compared once (as the original)
    data["study"]["methods"] = ["nce", "wrpn", "original"]  # the study's order: WRPN listed first
    data["rows"] = rows + [{**r, "method": "wrpn", "structure": "wrpn"} for r in rows if r["method"] == "original"]
    text = SUMMARY_TABLES["study-r8-from-trained"].render_from(str(_written(tmp_path, data)))
    assert "| wrpn | 1 | 2 |" in text and "| original | +2.10 |" in text and "| wrpn | +2.10 |" not in text
    assert "wrpn trains the same network as original (equal widths): one network, compared once, as original." in text


def _written(tmp_path, data):
    _write(tmp_path, SUMMARY_TABLES["study-r8-from-trained"].source, data)
    return tmp_path


def test_a_source_without_what_its_table_reads_is_a_one_line_error(tmp_path):
    data = {"seeds": [{"seed": 0, "retrained": {"1": {"ce": 1.0}}, "probe": []}]}  # no width 2, no provenance
    with pytest.raises(UsageError, match="Table 'premise-known-answer' cannot be made from its source") as e:
        _render(tmp_path, "premise-known-answer", data)
    assert "\n" not in str(e.value) and "known_answer.json" in str(e.value)


def test_search_diagnostics_rows(tmp_path):
    def search(bits, seed):
        return {"w_bits": bits, "a_bits": bits, "seed": seed, "macs_ratio": 0.5, "widths": [4, 32],
                "original_widths": [16, 32], "cost_active": {"macs": {"down": 0.25, "up": 0.125}},
                "grad_norm_ratio": 1.5, "kendall_ce_mean": 0.2, "provenance": _prov("k"), "subnet_1x_accuracy": [0.8, 0.7],
                "trajectory": [{"accuracy": 0.12, "subnet_1x_accuracy": 0.8},
                               {"accuracy": 0.2, "subnet_1x_accuracy": 0.7}]}

    rows, _ = _render(tmp_path, "compress-cifar-searches", [search(8, 1), search(32, 0)])
    # higher precision first; narrowest 4 of 16; sampled accuracies' range; the 1X sub-network's first and last
    assert rows[2] == ["W32A32", "0", "0.500", "0.250", "0.25 / 0.12", "1.50", "12-20", "80.0 -> 70.0", "+0.20"]
    assert rows[3][:2] == ["W8A8", "1"]
    # a study's: TAS's searches before NCE's, by seed, with the layers each expanded
    study = [{**search(2, 1), "mode": "nce", "layers_expanded": 3}, {**search(2, 0), "mode": "nce", "layers_expanded": 7},
             {**search(2, 0), "mode": "tas", "layers_expanded": 0}]
    rows, _ = _render(tmp_path, "study-r8-from-trained-searches", study)
    assert [r[:3] for r in rows[2:]] == [["tas", "0", "-"], ["nce", "0", "7"], ["nce", "1", "3"]]
    assert rows[2][3:] == ["0.500", "0.250", "0.25 / 0.12", "1.50", "12-20", "80.0 -> 70.0", "+0.20"]
    # a log from before the instruments: what it did not record reads "-", the table still renders
    old = {k: v for k, v in search(2, 2).items() if k not in ("cost_active", "grad_norm_ratio", "subnet_1x_accuracy")}
    rows, _ = _render(tmp_path, "study-r8-from-trained-searches", [{**old, "mode": "nce", "layers_expanded": 1,
                                                                     "kendall_ce_mean": None}])
    assert rows[2] == ["nce", "2", "1", "0.500", "0.250", "-", "-", "12-20", "-", "-"]


def test_parity_rows(tmp_path):
    card = {"test_samples": 64, "keras_test_accuracy": 0.75, "tflite_test_accuracy": 0.5, "provenance": _prov("m"),
            "parity": {"tflite_top1_agreement": 0.875, "tflite_mean_logit_diff": 0.2, "tflite_max_logit_diff": 1.0,
                       "int8_output_step": 0.1, "saved_model_max_diff": 0.0, "keras_reload_max_diff": 0.0}}
    rows, _ = _render(tmp_path, "export-quickstart-parity", card)
    assert rows[2] == ["64", "75.0", "50.0", "87.5", "0.20 / 1.00 (2.0 / 10.0 steps)", "0.100", "0 / 0"]


def test_near_1x_pairs_each_seed_and_tests_the_differences(tmp_path):
    def search(seed, bits, gap_t, accuracies=((0.55, 0.56), (0.60, 0.58)), rows=7):
        trajectory = [{"epoch": 1, "phase": "warmup", "accuracy": 0.3}]
        trajectory += [{"epoch": e + 2, "phase": "search", "arch_accuracy": a, "subnet_1x_accuracy": one}
                       for e, (a, one) in enumerate(accuracies)]
        return {"workdir": f"s/{bits}_{seed}", "seed": seed, "w_bits": bits, "a_bits": bits,
                "kendall_gap_t_mean": gap_t, "kendall_gap_t": [gap_t] * 7, "kendall_gap_t_rows": rows,
                "kendall_gap_mean": None if gap_t is None else gap_t * 1e-3, "trajectory": trajectory,
                "provenance": _prov("c")}

    data = [search(0, 2, 7.0), search(0, 32, 6.0, accuracies=((0.50, 0.56), (0.58, 0.58))), search(1, 2, 5.5),
            search(1, 32, 3.5, accuracies=((0.35, 0.5), (0.6, 0.6)), rows=6), search(2, 2, 4.0),
            search(2, 32, 1.0), search(3, 2, 2.0, accuracies=((0.45, 0.80),)),  # 0.45 < 0.6 x 0.80: fails
            search(4, 2, None, accuracies=((0.5, 0.5),)), search(4, 32, 1.0, accuracies=())]
    table = SUMMARY_TABLES["premise-near-1x"]
    _write(tmp_path, table.source, data)
    per_seed, test, footnote = table.render_from(str(tmp_path)).split("\n\n")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in per_seed.splitlines()[2:]]
    assert [r[:4] for r in rows] == [["0", "+7.00", "+6.00", "+1.00"], ["1", "+5.50", "+3.50 (6 of 7 rows)", "+2.00"],
                                     ["2", "+4.00", "+1.00", "+3.00"], ["3", "+2.00", "(not run yet)", "-"],
                                     ["4", "-", "+1.00", "-"]]
    # arch_accuracy: W2A2 55 and 60 (mean 57.5), W32A32 50 and 58 (mean 54): +3.5 points
    assert rows[0][4:] == ["+7.00e-03", "+6.00e-03", "55.0-60.0", "50.0-58.0", "+3.5", "passes"]
    assert rows[1][9] == "W32A32 epoch 2: 35.0% (1X 50.0%)" and rows[3][9] == "W2A2 epoch 2: 45.0% (1X 80.0%)"
    assert rows[4][4] == "-" and rows[4][9] == "W32A32 not checkable (a search epoch without arch_accuracy or the 1X accuracy)"
    # d = +1, +2, +3 (seeds 3 and 4 have no difference): mean 2, t(0.975, 2) se = 4.3027 x 0.5774 = 2.48;
    # all of one sign: p = p_min = 2 / 8, so nothing could resolve with 3 pairs and no detectable difference is claimed.
    lines = test.splitlines()
    assert lines[2] == "| gap_t (the planned test) | 3 | +2.00 | [-0.48, +4.48] | 0.25 (0.25) | none at n = 3 | not resolved |"
    # the raw gap: the test's gap_t x 1e-3, so its differences are 1e-3, 2e-3, 3e-3
    assert lines[3] == ("| gap (secondary) | 3 | +2.00e-03 | [-4.84e-04, +4.48e-03] | 0.25 (0.25) | none at n = 3 | "
                        "not resolved |")
    # arch_accuracy differences: +3.5 (seed 0), seed 1 W2A2 57.5 - W32A32 (35 + 60) / 2 = 47.5: +10.0; seed 2: 0
    assert lines[4].startswith("| `arch_accuracy`, points (context) | 3 | +4.5 | ")
    assert "Commit ccccccc" in footnote
    # two searches of one seed and precision (e.g. the pilot's globbed in too) are refused, not overwritten
    _write(tmp_path, table.source, data + [search(0, 2, 1.0)])
    with pytest.raises(UsageError, match="Two W2A2 searches of seed 0"):
        table.render_from(str(tmp_path))


def test_near_1x_rows_test_each_row_over_the_complete_pairs(tmp_path):
    def search(seed, bits, gap_t, gap):
        return {"workdir": f"s/{bits}_{seed}", "seed": seed, "w_bits": bits, "a_bits": bits, "layers": ["a", "b"],
                "kendall_gap_t": gap_t, "kendall_gap": gap, "provenance": _prov("r")}

    # row a: gap_t differences +1, +2, +3, +4 (all W2A2 higher: p = 2 / 16); row b: +1, -1, +1, -1 (p = 1);
    # gap of row b missing in one W32A32 search (e.g. never live): that pair drops out of that cell only
    data = []
    for seed, (da, db) in enumerate([(1, 1), (2, -1), (3, 1), (4, -1)]):
        data += [search(seed, 2, [10.0 + da, 5.0 + db], [0.02, 0.01]),
                 search(seed, 32, [10.0, 5.0], [0.01, None if seed == 3 else 0.03])]
    data.append(search(9, 2, [1.0, 1.0], [0.0, 0.0]))  # no W32A32 partner: not a pair
    rows, footnote = _render(tmp_path, "premise-near-1x-rows", data)
    assert rows[2] == ["a", "4 of 4", "+2.50", "0.125", "0.25", "4 of 4", "+1.00e-02", "0.125", "0.25"]
    # gap of row b: -0.02 in each of 3 pairs: p = 2 / 8; Holm over the two rows: 2 x 0.125 for a, then 0.25 for b
    assert rows[3] == ["b", "2 of 4", "+0.00", "1", "1", "0 of 3", "-2.00e-02", "0.25", "0.25"]
    assert "Exploratory" in footnote and "rrrrrrr" in footnote


def test_beyond_1x_tests_the_log_ratio_of_the_expanded_candidate_over_n(tmp_path):
    import math

    def search(seed, bits, ratios, expanded_at=(2, 2, 2), accuracies=(0.5, 0.55, 0.6)):
        # rows with three live candidates (0.875n, n, 1.125n): p(1.125n) / p(n) = the given ratio
        trajectory = [{"epoch": 1, "phase": "warmup"}]
        trajectory += [{"epoch": e + 2, "phase": "search", "arch_accuracy": a} for e, a in enumerate(accuracies)]
        return {"workdir": f"b/{bits}_{seed}", "seed": seed, "w_bits": bits, "a_bits": bits,
                "final_probs": [[0.0, 1 / (1 + r), r / (1 + r)] for r in ratios], "expanded_at": list(expanded_at),
                "trajectory": trajectory, "provenance": _prov("b")}

    e = math.e
    data = [search(0, 2, [e ** 2, e ** 2, e ** 2]), search(0, 32, [e, e, e]),        # R 2 and 1: +1
            search(1, 2, [e ** 3, e, 1.0], expanded_at=(2, 2, 3)),                    # row 2 late: not counted
            search(1, 32, [e, e, e ** 5]),                                              # rows 0, 1: R 2 and 1: +1
            search(2, 2, [e ** 4] * 3), search(2, 32, [e] * 3, accuracies=(0.35, 0.5, 0.5)),  # +3, gate fails
            search(3, 2, [e] * 3, expanded_at=(2, None, None))]                          # no partner yet
    table = SUMMARY_TABLES["premise-beyond-1x"]
    _write(tmp_path, table.source, data)
    per_seed, test, footnote = table.render_from(str(tmp_path)).split("\n\n")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in per_seed.splitlines()[2:]]
    assert rows[0][:5] == ["0", "3", "+2.00", "+1.00", "+1.00"] and rows[0][5:] == ["50.0-60.0", "50.0-60.0", "passes"]
    assert rows[1][:5] == ["1", "2", "+2.00", "+1.00", "+1.00"]
    assert rows[2][:5] == ["2", "3", "+4.00", "+1.00", "+3.00"]
    assert rows[2][7] == "W32A32: 3 of 3 rows at the first check, arch_accuracy 35.0%"
    assert rows[3][:5] == ["3", "-", "+1.00", "(not run yet)", "-"]
    assert rows[3][7] == "W2A2: 1 of 3 rows at the first check"
    # the per-precision means over the complete pairs: W2A2 (2 + 2 + 4) / 3, W32A32 1
    assert rows[4][:4] == ["mean", "", "+2.67", "+1.00"]
    # d = +1, +1, +3: mean 5/3, se = 1.1547 / sqrt(3) = 0.6667, t(0.975, 2) = 4.3027: [-1.20, +4.54]; p = 2 / 8
    assert test.splitlines()[2] == ("| R (the planned test) | 3 | +1.67 | [-1.20, +4.54] | 0.25 (0.25) | none at n = 3 | "
                                    "not resolved |")
    assert "bbbbbbb" in footnote and "plan.md" in footnote


def test_searched_widths_per_layer_by_method_and_seed(tmp_path):
    def search(mode, seed, widths):
        return {"workdir": f"state/{mode}_s{seed}", "mode": mode, "seed": seed, "widths": widths,
                "layers": ["stem_conv", "s1_b0_a_conv"], "original_widths": [16, 32], "provenance": _prov("w")}

    data = [search("nce", 1, [24, 8]), search("tas", 0, [16, 28]), search("nce", 0, [20, 40])]
    rows, footnote = _render(tmp_path, "cifar-subset-widths", data)
    # TAS before NCE, each method's searches in seed order, one column a method
    assert rows[0] == ["layer", "original", "tas, seeds 0", "nce, seeds 0, 1"]
    assert rows[2:] == [["stem_conv", "16", "16", "20, 24"], ["s1_b0_a_conv", "32", "28", "40, 8"]]
    assert "wwwwwww" in footnote  # the searches' commit
    # searches of another network are refused in one line, naming both
    other = {**search("tas", 2, [16, 28]), "original_widths": [16, 64]}
    with pytest.raises(UsageError, match="different networks .*state/tas_s2.*state/nce_s1") as e:
        _render(tmp_path, "cifar-subset-widths", [*data, other])
    assert "\n" not in str(e.value)


def test_pad_merge_tests_precision_and_merge_in_their_own_families(tmp_path):
    import math

    e = math.e

    def search(arm, merge, seed, bits, gap_t=None, gap=None, ratio=None, accuracies=(0.5, 0.55, 0.6), name=None):
        trajectory = [{"epoch": 1, "phase": "warmup"}]
        trajectory += [{"epoch": k + 2, "phase": "search", "arch_accuracy": a} for k, a in enumerate(accuracies)]
        run = {"workdir": f"x/{name or arm}_{merge}_{bits}_{seed}", "mode": "tas" if arm == "top2" else "nce",
               "pair_merge": merge, "seed": seed, "w_bits": bits, "a_bits": bits, "trajectory": trajectory,
               "kendall_gap_t_mean": gap_t, "kendall_gap_mean": gap, "provenance": _prov("p"),
               "expanded_at": [2, 2, 2], "final_probs": [[0.0, 1 / (1 + ratio), ratio / (1 + ratio)]] * 3 if ratio else None}
        if merge == "cwi" and arm == "top2":  # the near-1X searches' records name no merge
            del run["pair_merge"]
        return run

    data = []
    for seed in range(3):
        data += [search("top2", "pad", seed, 2, gap_t=3.0 + seed, gap=(3.0 + seed) * 1e-3),
                 search("top2", "pad", seed, 32, gap_t=2.0, gap=2e-3,
                        accuracies=(0.35, 0.5, 0.5) if seed == 2 else (0.5, 0.55, 0.6)),
                 search("top2", "cwi", seed, 2, gap_t=9.0, gap=1e-2), search("top2", "cwi", seed, 32, gap_t=9.0, gap=2e-2),
                 # b1x searched network pair s with search seed s + 100
                 search("b1x", "pad", seed + 100, 2, ratio=e ** 2), search("b1x", "pad", seed + 100, 32, ratio=e),
                 search("b1x", "cwi", seed + 100, 2, ratio=e ** 3), search("b1x", "cwi", seed + 100, 32, ratio=e ** 3)]
    data += [search("top2", "pad", 3, 2, gap_t=1.0, gap=1e-3)]  # pair 3: one search so far
    check = search("b1x", "cwi", 100, 2, ratio=e ** 3, name="check_b1x")
    check["final_probs"] = [[0.0, p[1] - 0.01, p[2] + 0.01] for p in check["final_probs"]]
    table = SUMMARY_TABLES["premise-pad-merge"]
    _write(tmp_path, table.source, data + [check])
    precision, merge, tests, check_line, footnote = table.render_from(str(tmp_path)).split("\n\n")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in precision.splitlines()[2:]]
    assert rows[0] == ["0", "+3.00", "+2.00", "+1.00", "3", "+2.00", "+1.00", "+1.00",
                       "50.0-60.0; 50.0-60.0; 50.0-60.0; 50.0-60.0", "passes"]
    assert rows[2][3] == "+3.00" and rows[2][9] == "W32A32: arch_accuracy 35.0%"
    assert rows[3] == ["3", "+1.00", "-", "-", "-", "-", "-", "-", "50.0-60.0; -; -; -", "-"]
    assert len(rows) == 4  # one line per network pair, whatever seed searched it
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in merge.splitlines()[2:]]
    assert rows[1] == ["1", "+1.00e-02", "+4.00e-03", "+2.00e-02", "+2.00e-03", "+3.00", "+2.00 (3)", "+3.00",
                       "+1.00 (3)"]
    assert rows[3] == ["3", "-", "+1.00e-03", "-", "-", "-", "-", "-", "-"]
    # over the pairs with both merges: W2A2 gap pad (3 + 4 + 5) / 3 e-3 (pair 3 has no cwi search)
    assert rows[4] == ["mean", "+1.00e-02", "+4.00e-03", "+2.00e-02", "+2.00e-03", "+3.00", "+2.00", "+3.00", "+1.00"]
    lines = tests.splitlines()
    # P1: d = 1, 2, 3 (p = p_min = 2 / 8); P2: d = 1, 1, 1 (no spread); Holm over the two: 2 x 0.25 = 0.5 each
    assert lines[2] == "| P1 top2-pad gap_t, W2A2 - W32A32 | 3 | +2.00 | [-0.48, +4.48] | 0.25 (0.25) | 0.5 | none at n = 3 | not resolved |"
    assert lines[3].startswith("| P2 b1x-pad R, W2A2 - W32A32 | 3 | +1.00 | [+1.00, +1.00] | 0.25 (0.25) | 0.5 |")
    # S1: R 3 - 2 = 1; S2: 3 - 1 = 2; S3: 1e-2 - (3, 4, 5)e-3 = 7, 6, 5 e-3; S4: 2e-2 - 2e-3 = 1.8e-2; Holm over 4: 1
    assert [line.split(" | ")[2] for line in lines[4:]] == ["+1.00", "+2.00", "+6.00e-03", "+1.80e-02"]
    assert all(line.split(" | ")[5] == "1" for line in lines[4:])
    assert check_line == ("Check run (seed 0, W2A2, interpolating, threshold 0.51, against the committed run at 0.6): "
                          "rows expanded at the first check 3 and 3 of 3; largest difference of a final probability 0.01.")
    assert "ppppppp" in footnote and "plan.md" in footnote


def test_merge_expansion_counts_steps_per_network_and_tests_cwi_against_pad(tmp_path):
    def search(seed, merge, expanded, macs=1.0, accuracies=(0.3, 0.35)):
        trajectory = [{"epoch": 1, "phase": "warmup"}]
        trajectory += [{"epoch": k + 2, "phase": "search", "arch_accuracy": a} for k, a in enumerate(accuracies)]
        return {"workdir": f"m/{merge}_{seed}", "seed": seed, "pair_merge": merge, "expanded": expanded,
                "layers_expanded": len(expanded), "macs_ratio": macs, "trajectory": trajectory, "provenance": _prov("m")}

    data = [search(200, "cwi", [["a", 3], ["b", 2]], macs=1.5), search(200, "pad", [["a", 1]]),   # 5 - 1 = +4
            search(201, "cwi", [["a", 2]]), search(201, "pad", [], accuracies=(0.2, 0.3)),          # 2 - 0 = +2
            search(202, "cwi", [["c", 1]]), search(202, "pad", [["a", 1], ["b", 1]]),               # 1 - 2 = -1
            search(203, "cwi", [])]                                                                 # no pad yet
    table = SUMMARY_TABLES["nce-expansion-merge"]
    _write(tmp_path, table.source, data)
    per_network, test, footnote = table.render_from(str(tmp_path)).split("\n\n")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in per_network.splitlines()[2:]]
    assert rows[0] == ["0", "5", "1", "+4", "2", "1", "1.50", "1.00", "30.0-35.0", "30.0-35.0", "passes"]
    assert rows[1][:4] == ["1", "2", "0", "+2"] and rows[1][10] == "pad: 20.0%"
    assert rows[3][:4] == ["3", "0", "(not run yet)", "-"] and rows[3][10] == "-"
    assert rows[4][:3] == ["mean", "2.67", "1.00"]
    # d = 4, 2, -1: mean 5/3, sd 2.5166, se 1.45297, t(0.975, 2) 4.30265: half width 6.2516, [-4.58, +7.92];
    # sign-flip: |sum| >= 5 for 4 of the 8 patterns (sums 7, 5, -5, -7) -> p = 0.5
    assert test.splitlines()[2] == ("| expansion steps (the planned test) | 3 | +1.67 | [-4.58, +7.92] | 0.5 (0.25) | "
                                    "none at n = 3 | not resolved |")
    assert "mmmmmmm" in footnote and "plan.md" in footnote
    _write(tmp_path, table.source, data + [search(3, "cwi", [])])
    with pytest.raises(UsageError, match="Two cwi searches of network 3"):
        table.render_from(str(tmp_path))


def test_probe_pooled_rows_in_points_by_width(tmp_path):
    def row(ratio, w2, w32, diff):
        group = lambda m: {"n": 3, "mean": m, "low": m - 0.01, "high": m + 0.01}  # noqa: E731
        return {"ratio": ratio, "groups": {"W2A2": group(w2), "W32A32": group(w32)},
                "comparison": {"difference": diff, "low": diff - 0.02, "high": diff + 0.02, "p": 0.3, "p_min": 0.1,
                               "mdd": 0.0257}}

    data = {"labels": ["W2A2", "W32A32"], "probes": [{"provenance": _prov("p")}],
            "summary": {"overall": [row(1.5, 0.001, -0.002, 0.003), row(0.5, -0.0224, -0.0127, -0.0097)]}}
    rows, footnote = _render(tmp_path, "premise-probe-live-pooled", data)
    assert rows[0][:3] == ["width", "W2A2: mean over layers [95%], networks", "W32A32: mean over layers [95%], networks"]
    # widths in order, fractions as points
    assert rows[2] == ["0.5x", "-2.24 [-3.24, -1.24], 3", "-1.27 [-2.27, -0.27], 3", "-0.97 [-2.97, +1.03]",
                       "0.3 (0.1)", "2.57"]
    assert rows[3][0] == "1.5x" and rows[3][3] == "+0.30 [-1.70, +2.30]"
    assert "ppppppp" in footnote


def test_probe_agreement_rows_adjust_the_searches_p_by_holm(tmp_path):
    def search(bits, seed, tau, p):
        return {"w_bits": bits, "a_bits": bits, "seed": seed, "layers_expanded": 3, "macs_ratio": 1.0,
                "cost_active": {"macs": {"down": 0.03, "up": 0.05}}, "grad_norm_ratio": 0.2,
                "subnet_1x_accuracy": [0.6, 0.5], "provenance": _prov("s"),
                "probe_agreement": {"ratio": 0.5, "width_ratio": [1.25, 0.5, 1.0],
                                    "own": {"tau": tau, "p": p}}}

    data = [search(32, 0, 0.5, 0.01), search(2, 1, 0.4, 0.04), search(2, 0, 0.6, 0.03)]
    rows, _ = _render(tmp_path, "nce-from-trained-precisions", data)
    assert [r[:2] for r in rows[2:]] == [["W2A2", "0"], ["W2A2", "1"], ["W32A32", "0"]]
    # Holm over three: 0.01 -> 3 x 0.01; 0.03 -> max(0.03, 2 x 0.03); 0.04 -> max(0.06, 1 x 0.04)
    assert [r[5:7] for r in rows[2:]] == [["+0.60", "0.03 (0.06)"], ["+0.40", "0.04 (0.06)"], ["+0.50", "0.01 (0.03)"]]
    assert rows[2][4] == "1 / 1" and rows[2][9] == "60.0 -> 50.0"


def test_bench_compare_rows_give_each_sides_mean_and_the_after_runs_commit(tmp_path):
    def ratio(before, after, diff):
        return {"before": before, "after": after, "difference": diff, "low": diff - 0.03, "high": diff + 0.03,
                "p": 0.4, "p_min": 0.0286, "mdd": 0.045, "resolved": False}

    _write(tmp_path, "bench_s16/after.jsonl", [{"ratio_k8": 1.0, "provenance": _prov("b")}] * 4)
    data = {"ratio_k8": ratio([1.0, 1.1, 1.05, 0.95], [1.02, 1.04, 1.0, 1.06], 0.005),
            "ratio_k16": ratio([0.9, 1.0, 0.95, 0.95], [0.98, 0.96, 0.94, 0.92], -0.0)}
    rows, footnote = _render(tmp_path, "bench-search-s16", data)
    assert rows[2] == ["`ratio_k8`", "1.025 (4)", "1.030 (4)", "+0.005 [-0.025, +0.035]", "0.4 (0.029)", "0.045", "no"]
    assert rows[3][1:3] == ["0.950 (4)", "0.950 (4)"]
    assert "bbbbbbb" in footnote
