"""The README's Python example runs as written (in a temporary directory)."""

import ast
import json
import os
import re

import keras
import numpy as np
import pytest

from nce_tf import cost
from nce_tf.cost import count_model
from nce_tf.export.exporter import run_tflite
from nce_tf.search import derive_widths

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _example(name):
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    match = re.search(rf"<!-- readme-example: {name} -->\s*```python\n(.*?)```", text, re.S)
    assert match, f"README example {name!r} not found"
    return match.group(1)


@pytest.mark.heavy
@pytest.mark.slow  # 63 s in the suite (.ci/run runs it with --slow)
def test_readme_api_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ns = {"__name__": "readme"}
    exec(compile(_example("api"), "README.md:api", "exec"), ns)  # noqa: S102
    out = capsys.readouterr().out
    # The derived widths and their cost as printed: the search space's count, which the zoo's own
    # Keras model at those widths reproduces.
    printed = re.search(r"derived widths (\[[\d, ]+\]) cost (\(\d+, \d+\))", out)
    widths, printed_cost = ast.literal_eval(printed.group(1)), ast.literal_eval(printed.group(2))
    counted = cost.count_arch("resnet8", widths)
    assert widths == ns["widths"] and printed_cost == (counted.macs, counted.params)
    assert f"Total MACs: {counted.macs:,} (" in out and f"Total params: {counted.params:,} (" in out
    # The parity printed is the model card's, and the int8 file run on the test images gives it.
    parity = ast.literal_eval(out.strip().splitlines()[-1])
    export = tmp_path / "runs" / "api_example" / "export"
    with open(export / "model_card.json", encoding="utf-8") as f:
        assert json.load(f)["parity"] == parity == ns["card"]["parity"]
    with open(export / "model_int8.tflite", "rb") as f:
        lite, _ = run_tflite(f.read(), ns["x_test"].numpy())
    reference = ns["model"].predict(ns["x_test"], verbose=0)
    assert parity["tflite_top1_agreement"] == float(np.mean(lite.argmax(1) == reference.argmax(1)))
    assert parity["tflite_max_logit_diff"] == pytest.approx(np.abs(lite - reference).max(), rel=1e-4, abs=1e-5)


def test_readme_adapt_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = _example("adapt")
    lines = [line for line in code.splitlines() if line.strip() and not line.startswith(("import", "from"))]
    assert len(lines) < 15  # the model, the search and the derivation in under 15 lines
    ns = {"__name__": "readme"}
    exec(compile(code, "README.md:adapt", "exec"), ns)  # noqa: S102
    macs, printed_cost = capsys.readouterr().out.strip().splitlines()[-1].split(" ", 1)
    # What it prints: the derived Keras model's MACs and the search's exact cost of its widths; the
    # derived model, counted layer by layer, costs exactly that, and its convs have the searched widths.
    derived = count_model(ns["derived"])
    assert (int(macs), ast.literal_eval(printed_cost)) == (derived.macs, (derived.macs, derived.params))
    # (an add whose inputs got different widths is fed through a projection: the rows' own convs keep theirs).
    rows = [row.name for row in ns["net"].space.rows]
    assert [ns["derived"].get_layer(name).filters for name in rows] == derive_widths(ns["net"]) and len(rows) == 2


def test_readme_float_init_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ns = {"__name__": "readme"}
    exec(compile(_example("float_init"), "README.md:float_init", "exec"), ns)  # noqa: S102
    report = ast.literal_eval(capsys.readouterr().out.strip().splitlines()[0])
    # Every layer copied whole: the narrowed conv keeps 24 of its 32 filters, the classifier their 24 rows.
    assert report["fresh"] == report["partial"] == [] and len(report["loaded"]) == 5  # 2 convs, 2 BNs, the classifier
    student = ns["student"]
    assert [layer.filters for layer in student.layers if hasattr(layer, "filters")] == [16, 24]
    # The saved student is the trained one: reloaded, it computes what the student in memory computes.
    saved = keras.saving.load_model(str(tmp_path / "student_w2a2.keras"), safe_mode=True)
    images = ns["images"][:8]
    np.testing.assert_array_equal(saved(images, training=False), student(images, training=False))
