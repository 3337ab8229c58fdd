"""The ``nce-tf`` command and its presets, from a checkout (``tests/test_wheel.py`` installs it).

- every script in ``tools/`` is a command of ``nce-tf`` and the other way round;
- ``--flagfile`` takes a path or a preset name, nested flagfiles resolve from any working
  directory, and an unknown one is a one-line error with exit status 2;
- a tool's output starts with nce-tf's own line: TensorFlow's C++ start-up messages reach the
  terminal only when ``TF_CPP_MIN_LOG_LEVEL`` (0, 1 or 2) asks for them.
"""

import os
import subprocess
import sys

import pytest
from absl import flags

from nce_tf import commands
from nce_tf.cli import flagfiles
from nce_tf.cli.config_flags import config_from_flags, define_flags
from nce_tf.errors import UsageError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = sorted(f[:-3] for f in os.listdir(os.path.join(REPO, "tools")) if f.endswith(".py"))
# What TensorFlow prints while it starts on a CPU machine (oneDNN notice, CUDA probing, absl's C++ log).
TF_STARTUP = ("oneDNN", "cuda", "TF_ENABLE_ONEDNN_OPTS", "E0000", "W0000", "I0000", "absl::InitializeLog")


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_CONFIG")}
    return {**env, "PYTHONDONTWRITEBYTECODE": "1", **extra}


def _run(*args, cwd=REPO, **env):
    return subprocess.run([sys.executable, *args], cwd=cwd, env=_env(**env), capture_output=True, text=True,
                          timeout=300)


def _one_line_error(proc, *needles):
    where = f"stdout: {proc.stdout!r}\nstderr: {proc.stderr!r}"
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), where
    assert "Traceback" not in proc.stderr and all(n in lines[0] for n in needles), where


def test_every_tool_is_a_command_and_every_command_a_tool():
    assert sorted(module for module, _ in commands.COMMANDS.values()) == TOOLS
    for name, (module, _) in commands.COMMANDS.items():
        assert name == module.replace("_", "-")
        with open(os.path.join(REPO, "tools", f"{module}.py"), encoding="utf-8") as f:
            assert f'launch("{name}")' in f.read(), module


@pytest.mark.parametrize("module", TOOLS)
def test_a_command_loads_no_tensorflow_before_its_flags_are_checked(module):
    """Importing a command defines its flags only: TensorFlow comes later, through cli.load_tensorflow."""
    code = (f"import sys; import nce_tf.commands.{module} as m; assert callable(m.main); "
            "print(sorted({'tensorflow', 'keras'} & set(sys.modules)))")
    proc = _run("-c", code)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr


def test_the_command_lists_its_commands_and_refuses_unknown_ones():
    listed = _run("-m", "nce_tf", "--help")
    assert listed.returncode == 0 and all(f"  {name} " in listed.stdout for name in commands.COMMANDS)
    _one_line_error(_run("-m", "nce_tf", "serach"), "'serach'", "search", "nce-tf --help")
    _one_line_error(_run("-m", "nce_tf"), "Received: none")


def test_a_tool_help_describes_the_tool_and_its_flags():
    proc = _run(os.path.join("tools", "search.py"), "--help")
    assert proc.returncode == 1 and not proc.stderr, proc.stderr  # absl's exit status after --help
    assert "arch.json" in proc.stdout and "--search_epochs" in proc.stdout and "--workdir" in proc.stdout


# ----------------------------------------------------------------------------- presets


def test_presets_are_the_files_of_flags_with_their_first_comment():
    presets = dict(flagfiles.list_presets())
    on_disk = {os.path.relpath(os.path.join(d, f), os.path.join(REPO, "flags"))[: -len(".flags")]
               for d, _, files in os.walk(os.path.join(REPO, "flags")) for f in files if f.endswith(".flags")}
    assert set(presets) == {p.replace(os.sep, "/") for p in on_disk}
    assert {"quickstart", "paper/table2_resnet32_nce_w2a2", "cifar_subset/nce_small_budget"} <= set(presets)
    assert all(presets.values()), [name for name, about in presets.items() if not about]
    assert presets["quickstart"].startswith("Quickstart:")
    proc = _run(os.path.join("tools", "presets.py"))
    assert proc.returncode == 0 and f"quickstart{' ' * 3}" in proc.stdout, proc.stderr
    assert len(proc.stdout.splitlines()) == len(presets)


def _parse(argv, cwd):
    here = os.getcwd()
    os.chdir(cwd)
    try:
        values = flags.FlagValues()
        define_flags(values)
        values(flagfiles.expand(["tool", *argv, "--workdir=/tmp/unused"]))
        return config_from_flags(values)
    finally:
        os.chdir(here)


@pytest.mark.parametrize("value", ["quickstart", "quickstart.flags", "flags/quickstart.flags"])
def test_a_preset_by_name_from_any_directory(value, tmp_path):
    config = _parse([f"--flagfile={value}", "--epochs=3"], tmp_path)
    assert (config.model, config.synthetic_train_size, config.w_bits) == ("resnet20", 2048, 2)
    assert config.epochs == 3  # a later flag still wins over the flagfile's


def test_nested_flagfiles_resolve_outside_the_repository(tmp_path):
    """paper/table2_resnet32 -> flags/paper/nce_cifar10_search.flags -> flags/cifar10_base.flags."""
    config = _parse(["--flagfile=paper/table2_resnet32_nce_w2a2"], tmp_path)
    assert (config.model, config.dataset, config.epochs, config.weight_decay) == ("resnet32", "cifar10", 300, 5e-4)
    expanded = flagfiles.expand(["tool", "--flagfile", "study/cifar_subset_resnet8_w2a2"])
    assert "--arch_steps=4" in expanded and "--methods=random,tas,nce,wrpn,original" in expanded
    assert not [a for a in expanded if "flagfile" in a]


def test_an_existing_path_wins_over_a_preset_of_the_same_name(tmp_path):
    (tmp_path / "quickstart").write_text("# mine\n--model=resnet8\n  --epochs=5  \n// a comment\n")
    config = _parse(["--flagfile=quickstart"], tmp_path)
    assert (config.model, config.epochs, config.w_bits) == ("resnet8", 5, 32)  # not the preset's W2A2


@pytest.mark.parametrize("value", ["nosuch", "paper/nosuch", "../flags/quickstart", "/nowhere/quickstart.flags"])
def test_an_unknown_preset_names_the_value_and_where_to_look(value):
    with pytest.raises(UsageError, match="nce-tf presets") as raised:
        flagfiles.expand(["tool", f"--flagfile={value}"])
    assert repr(value) in str(raised.value)


def test_flagfiles_including_each_other_are_refused(tmp_path):
    (tmp_path / "a.flags").write_text(f"--flagfile={tmp_path / 'b.flags'}\n")
    (tmp_path / "b.flags").write_text(f"--epochs=2\n--flagfile={tmp_path / 'a.flags'}\n")
    with pytest.raises(UsageError, match="circle"):
        flagfiles.expand(["tool", f"--flagfile={tmp_path / 'a.flags'}"])


def test_an_unknown_preset_is_one_line_and_exit_status_2(tmp_path):
    proc = _run(os.path.join(REPO, "tools", "train.py"), "--flagfile=quickstrat", f"--workdir={tmp_path}/run",
                cwd=tmp_path)
    _one_line_error(proc, "flagfile='quickstrat'", "nce-tf presets")
    assert not os.path.exists(tmp_path / "run")


# ----------------------------------------------------------------------------- quiet start-up


def _combined(*args, **env):
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=_env(**env), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout
    return proc.stdout.splitlines()


@pytest.mark.heavy
def test_a_tool_output_starts_with_its_own_line_and_tf_logs_are_opt_in():
    count = [os.path.join("tools", "count.py"), "--model=resnet8"]
    lines = _combined(*count)
    assert lines[0].startswith("resnet8 W32A32, widths [16, 16, 16, 32, 32, 64, 64]"), lines[:5]
    assert not [ln for ln in lines if any(m in ln for m in TF_STARTUP)], lines
    # A user's level 3 asks for silence: the lines TF logs before its logger starts stay off too.
    assert _combined(*count, TF_CPP_MIN_LOG_LEVEL="3") == lines
    # Level 0 asks for TF's own lines: here (a CPU machine) its oneDNN notice and CUDA probing.
    verbose = _combined(*count, TF_CPP_MIN_LOG_LEVEL="0")
    assert [ln for ln in verbose if any(m in ln for m in TF_STARTUP)], verbose[:5]
    assert lines[0] in verbose


@pytest.mark.parametrize("args", [["--help"], ["presets"]])
def test_output_cut_short_by_its_reader_ends_quietly(args):
    # `nce-tf --help | head -1`: the reader closes the pipe after one line; no traceback follows.
    proc = subprocess.Popen([sys.executable, "-m", "nce_tf", *args], cwd=REPO, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 1) and b"Traceback" not in err, err.decode()
