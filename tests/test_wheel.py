"""The wheel, installed: ``nce-tf`` and its presets work outside the repository.

The wheel is built offline from a copy of the sources (a build in the checkout would leave
``build/`` and ``*.egg-info`` behind) and installed into a fresh venv outside the repository
that sees the system's site-packages (TensorFlow and the other dependencies; nothing is
downloaded).  CI installs the checkout in editable mode first, which that venv also sees, so
the wheel is installed with ``--force-reinstall`` and the test asserts that ``nce_tf`` is
imported from the venv.  The commands then run in a temporary directory without ``flags/``:
a shortened quickstart pipeline by preset name, and ``count`` of the architecture it derived.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

pytestmark = pytest.mark.wheel
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS_DIR = os.path.join(REPO, "flags")
# The quickstart preset, shortened: ResNet-8, one search epoch and one training epoch of 2 steps each.
TINY = ["--model=resnet8", "--synthetic_train_size=128", "--synthetic_test_size=64", "--epochs=1",
        "--warmup_epochs=0", "--steps_per_epoch=2", "--batch_size=32", "--search_warmup_epochs=0",
        "--search_epochs=1", "--search_steps_per_epoch=2", "--search_batch_size=16", "--verbose=0"]


def _check(proc):
    assert proc.returncode == 0, f"{proc.args}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """``(bin directory, environment)`` of a venv holding the freshly built wheel."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("nce_tf", "flags"):
        shutil.copytree(os.path.join(REPO, name), src / name, ignore=ignore)
    for name in ("setup.py", "README.md"):
        shutil.copy(os.path.join(REPO, name), src / name)
    _check(subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(root / "dist"), str(src)], capture_output=True, text=True, timeout=300))
    (wheel,) = glob.glob(str(root / "dist" / "*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    shipped = {os.path.relpath(p, FLAGS_DIR).replace(os.sep, "/")
               for p in glob.glob(os.path.join(FLAGS_DIR, "**", "*.flags"), recursive=True)}
    assert len(shipped) > 30 and {f"nce_tf/presets/{p}" for p in shipped} <= names
    assert any(n.endswith("entry_points.txt") for n in names)

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL", "TF_CONFIG")}
    env.update(PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1")
    # No pip of its own: the system's pip (seen through system site-packages) installs into the venv.
    _check(subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(root / "venv")],
                          capture_output=True, text=True, env=env, timeout=120))
    bin_dir = root / "venv" / "bin"
    _check(subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                           "--force-reinstall", wheel], capture_output=True, text=True, env=env, timeout=300))
    return bin_dir, env


def _in(venv, cwd, program, *args):
    bin_dir, env = venv
    return subprocess.run([str(bin_dir / program), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_the_installed_package_is_the_wheel_and_finds_its_presets(venv, tmp_path):
    code = ("import os, nce_tf; from nce_tf.cli import flagfiles; from nce_tf.provenance import checkout_root; print(os.path.realpath(nce_tf.__file__)); "
            "print(checkout_root()); "
            "print(' '.join(flagfiles.expand(['t', '--flagfile=paper/table2_resnet32_nce_w2a2'])[1:]))")
    where, root, expanded = _check(_in(venv, tmp_path, "python", "-c", code)).stdout.splitlines()
    assert where.startswith(os.path.realpath(venv[0].parent)) and not where.startswith(REPO), where
    assert root == "None"
    # Nested references (flags/paper/nce_cifar10_search.flags, flags/cifar10_base.flags) came from the wheel.
    assert "--dataset=cifar10" in expanded and "--threshold=0.3" in expanded and expanded.endswith("--a_bits=2")
    listed = _check(_in(venv, tmp_path, "nce-tf", "presets")).stdout
    assert "quickstart " in listed and "paper/table2_resnet32_nce_w2a2 " in listed


def test_an_unknown_preset_is_one_line_and_exit_status_2(venv, tmp_path):
    proc = _in(venv, tmp_path, "nce-tf", "search", "--flagfile=quickstrat", "--workdir=run")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("error: ") and "'quickstrat'" in proc.stderr and "nce-tf presets" in proc.stderr


def test_quickstart_pipeline_and_count_with_the_installed_command(venv, tmp_path):
    nce = _check(_in(venv, tmp_path, "nce-tf", "nce", "--flagfile=quickstart", "--workdir=run", *TINY))
    assert nce.stdout.startswith("nce-tf: searching resnet8 W2A2 (nce) on synthetic"), nce.stdout
    assert not nce.stderr.strip(), nce.stderr  # TensorFlow's start-up lines stay off
    with open(tmp_path / "run" / "arch.json", encoding="utf-8") as f:
        arch = json.load(f)
    with open(tmp_path / "run" / "metrics.json", encoding="utf-8") as f:
        metrics = json.load(f)
    assert (metrics["macs"], metrics["params"]) == (arch["macs"], arch["params"])
    assert (tmp_path / "run" / "report.md").is_file() and (tmp_path / "run" / "train" / "model.keras").is_file()
    count = _check(_in(venv, tmp_path, "nce-tf", "count", "--arch=run/arch.json", "--json"))
    counted = json.loads(count.stdout)
    assert (counted["macs"], counted["params"], counted["widths"]) == (arch["macs"], arch["params"], arch["widths"])
