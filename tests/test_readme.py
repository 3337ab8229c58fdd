"""The README's Python example runs as written (in a temporary directory)."""

import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _example(name):
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    match = re.search(rf"<!-- readme-example: {name} -->\s*```python\n(.*?)```", text, re.S)
    assert match, f"README example {name!r} not found"
    return match.group(1)


@pytest.mark.heavy
def test_readme_api_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(_example("api"), "README.md:api", "exec"), {"__name__": "readme"})  # noqa: S102
    out = capsys.readouterr().out
    assert "derived widths" in out and "Total MACs" in out and "tflite_top1_agreement" in out
    assert os.path.exists(tmp_path / "runs" / "api_example" / "export" / "model_int8.tflite")


def test_readme_adapt_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = _example("adapt")
    lines = [line for line in code.splitlines() if line.strip() and not line.startswith(("import", "from"))]
    assert len(lines) < 15  # the model, the search and the derivation in under 15 lines
    exec(compile(code, "README.md:adapt", "exec"), {"__name__": "readme"})  # noqa: S102
    macs, cost = capsys.readouterr().out.strip().splitlines()[-1].split(" ", 1)
    assert cost.startswith(f"({macs},")  # count_model of the derived net == the search's exact cost


def test_readme_float_init_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(_example("float_init"), "README.md:float_init", "exec"), {"__name__": "readme"})  # noqa: S102
    report = capsys.readouterr().out
    # Every layer copied whole: the narrowed conv keeps 24 of its 32 filters, the classifier their 24 rows.
    assert "'fresh': []" in report and "'partial': []" in report
    assert os.path.exists(tmp_path / "student_w2a2.keras")
