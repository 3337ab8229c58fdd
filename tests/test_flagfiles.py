"""Every flagfile in flags/ parses and describes a valid training run."""

import os

import pytest
from absl import flags

from nce_tf.train.flags import config_from_flags, define_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGFILES = sorted(f for f in os.listdir(os.path.join(ROOT, "flags"))
                   if f.endswith(".flags") and not f.endswith("_base.flags"))


def _parse(flagfile, *extra):
    values = flags.FlagValues()
    define_flags(values)
    cwd = os.getcwd()
    os.chdir(ROOT)  # nested --flagfile paths are relative to the repository root
    try:
        values(["train", f"--flagfile=flags/{flagfile}", "--workdir=/tmp/unused", *extra])
    finally:
        os.chdir(cwd)
    return config_from_flags(values).validate()


@pytest.mark.parametrize("flagfile", FLAGFILES)
def test_flagfile_is_valid(flagfile):
    config = _parse(flagfile)
    if flagfile != "quickstart.flags":
        model, quant = flagfile[: -len(".flags")].split("_")[1:]
        assert config.model == model and f"W{config.w_bits}A{config.a_bits}".lower() == quant
        cifar = flagfile.startswith("cifar10")
        assert (config.dataset, config.epochs, config.weight_decay) == (
            ("cifar10", 300, 5e-4) if cifar else ("imagenet2012", 120, 1e-4))


def test_command_line_overrides_the_flagfile():
    assert _parse("quickstart.flags", "--epochs=2", "--w_bits=32").epochs == 2


def test_paper_baselines_are_all_there():
    expected = {f"cifar10_{m}_{q}.flags" for m in ("resnet20", "resnet32", "resnet56", "vgg16")
                for q in ("w32a32", "w2a2")}
    expected |= {f"imagenet_{m}_{q}.flags" for m in ("resnet18", "resnet50") for q in ("w32a32", "w2a2")}
    assert expected <= set(FLAGFILES)
