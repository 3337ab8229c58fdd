"""Every flagfile in flags/ parses and describes a valid training run."""

import dataclasses
import os

import pytest
from absl import flags

from nce_tf.cli.config_flags import config_from_flags, define_flags, search_config_from_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGFILES = sorted(f for f in os.listdir(os.path.join(ROOT, "flags"))
                   if f.endswith(".flags") and not f.endswith("_base.flags"))


def _values(path, *extra, define=define_flags):
    """Flag values parsed from ``flags/<path>`` (and ``extra``) as a tool would parse them."""
    values = flags.FlagValues()
    define(values)
    cwd = os.getcwd()
    os.chdir(ROOT)  # nested --flagfile paths are relative to the repository root
    try:
        values(["tool", f"--flagfile=flags/{path}", "--workdir=/tmp/unused", *extra])
    finally:
        os.chdir(cwd)
    return values


def _parse(flagfile, *extra):
    return config_from_flags(_values(flagfile, *extra)).validate()


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


# ------------------------------------------------------------ the paper's search settings

PAPER = sorted(f for f in os.listdir(os.path.join(ROOT, "flags", "paper"))
               if f.startswith("table") and f.endswith(".flags"))


def _parse_search(flagfile, folder="paper"):
    values = _values(f"{folder}/{flagfile}")
    return config_from_flags(values).validate(), search_config_from_flags(values).validate()


@pytest.mark.parametrize("flagfile", PAPER)
def test_paper_search_flagfile(flagfile):
    train, search = _parse_search(flagfile)
    table, model, mode_or_t, *rest = flagfile[: -len(".flags")].split("_")
    assert train.model == model
    quant = rest[-1] if rest else mode_or_t
    assert f"w{train.w_bits}a{train.a_bits}" == quant
    if model in ("resnet18", "resnet50"):  # ImageNet: 50 images per class, 40 + 110 epochs, T 0.19, coefficient 1.5
        assert (search.search_dataset, train.subset_per_class, train.dataset) == (
            "imagenet2012_subset", 50, "imagenet2012")
        assert (search.search_warmup_epochs, search.search_epochs, search.threshold) == (40, 110, 0.19)
        assert search.lambda_flops == search.lambda_params == 1.5
    else:  # CIFAR-10: 200 + 600 epochs, T 0.3 (Table 4 varies it), coefficient 2
        assert train.dataset == "cifar10"
        assert (search.search_warmup_epochs, search.search_epochs) == (200, 600)
        assert search.lambda_flops == search.lambda_params == 2.0
        expected_t = int(rest[0][1:]) / 100 if table == "table4" else 0.3
        assert search.threshold == pytest.approx(expected_t)
    assert (search.flops_ratio, search.params_ratio, search.tolerance_above) == (1.0, 1.0, 0.06)
    assert search.tolerance == (0.1 if table == "table5" else 0.05)
    if mode_or_t.startswith("tas"):
        assert (search.mode, search.tas_space) == ("tas", mode_or_t[3:])
    else:
        assert search.mode == "nce"


def test_paper_tables_are_all_covered():
    names = set(PAPER)
    assert {f"table1_resnet20_{m}_w2a2.flags" for m in ("tas2x8", "tas2x16", "nce")} <= names
    assert {f"table2_{m}_nce_w2a2.flags" for m in ("resnet32", "resnet56", "vgg16")} <= names
    assert {f"table3_{m}_nce_w2a2.flags" for m in ("resnet18", "resnet50")} <= names
    assert {f"table4_resnet20_nce_t{t}_w2a2.flags" for t in ("030", "025", "020", "015")} <= names
    assert {f"table5_resnet20_nce_{q}.flags" for q in ("w3a3", "w4a4")} <= names


# Every searched network the paper reports with its costs: (flagfile, FLOPs, PARAMs or None).
PAPER_COSTS = [
    ("table1_resnet20_nce_w2a2.flags", 40.99e6, 0.24e6),       # Tables 1 and 2: 1.004x FLOPs, 0.88x PARAMs
    ("table1_resnet20_tas2x8_w2a2.flags", 43.11e6, None),      # 1.056x
    ("table1_resnet20_tas2x16_w2a2.flags", 40.36e6, None),     # 0.989x
    ("table2_resnet32_nce_w2a2.flags", 66.63e6, 0.42e6),       # 0.964x, 0.90x
    ("table2_resnet56_nce_w2a2.flags", 123.04e6, 0.74e6),      # 0.978x, 0.86x
    ("table2_vgg16_nce_w2a2.flags", 302.96e6, 5.01e6),         # 0.967x, 0.34x
    ("table3_resnet18_nce_w2a2.flags", 1.897e9, 10.94e6),      # 1.046x, 0.94x
    ("table3_resnet50_nce_w2a2.flags", 3.932e9, 17.66e6),      # 0.962x, 0.69x
    ("table5_resnet20_nce_w3a3.flags", 39.07e6, None),         # 0.957x
    ("table5_resnet20_nce_w4a4.flags", 37.07e6, None),         # 0.908x
]


@pytest.mark.parametrize("flagfile,macs,params", PAPER_COSTS)
def test_paper_flagfiles_admit_the_networks_the_paper_reports(flagfile, macs, params):
    """Each reported FLOPs / PARAMs pair is inside its flagfile's budget (Budget.fits)."""
    from nce_tf.sources import build_space
    from nce_tf.search.units import Budget

    train, search = _parse_search(flagfile)
    space = build_space(train.model)
    budget = Budget.from_config(space, search)
    assert budget.fits({"macs": macs, "params": 0 if params is None else params})
    # ... and the budget is not vacuous: 10% more FLOPs, or PARAMs above the original, are refused.
    original = {e.name: e.original for e in budget.entries}
    assert not budget.fits({"macs": 1.1 * original["macs"], "params": 0})
    assert not budget.fits({"macs": original["macs"], "params": 1.01 * original["params"]})


def test_paper_costs_cover_every_table_with_costs():
    # Table 4 reports accuracies only; the 1X TAS row is context (no cost in the paper).
    assert {f for f, _, _ in PAPER_COSTS} == {f for f in PAPER if not f.startswith("table4") and "tas1x8" not in f}


SUBSET = sorted(f for f in os.listdir(os.path.join(ROOT, "flags", "cifar_subset")) if f.endswith(".flags"))


@pytest.mark.parametrize("flagfile", SUBSET)
def test_cifar_subset_flagfiles_are_valid(flagfile):
    train, search = _parse_search(flagfile, "cifar_subset")
    assert train.dataset.startswith("npz:") and train.model == "resnet20"
    if flagfile == "nce_small_budget.flags":  # the paper's T, coefficient and tau; a budget-sized alpha schedule
        assert (search.threshold, search.lambda_flops, search.tau_max, search.arch_weight_decay) == (0.3, 2.0, 5.0, 1e-3)
        assert (search.arch_steps, search.search_batch_size, search.search_epochs) == (4, 64, 12)
    if flagfile.startswith("w2a2_float_init"):  # from the table's float run, the same epochs as w2a2.flags
        scratch = _parse_search("w2a2.flags", "cifar_subset")[0]
        assert (train.init_from, train.pact_init) == ("runs/cifar_subset/w32a32_s0", "stats")
        assert train.epochs == scratch.epochs
        kd = flagfile == "w2a2_float_init_kd.flags"
        assert (train.teacher, train.kd_weight) == (("runs/cifar_subset/w32a32_s0", 0.5) if kd else ("", 0.0))


FLOAT_INIT = sorted(f for f in os.listdir(os.path.join(ROOT, "flags", "float_init")) if f.endswith(".flags"))


@pytest.mark.parametrize("flagfile", FLOAT_INIT)
def test_float_init_flagfiles_start_from_the_float_baseline(flagfile):
    """Each is its from-scratch preset (an ImageNet W2A2 baseline or a Table 3 NCE run) with a float start: the
    work directory of the same model's W32A32 preset, PACT statistics, a tenth of the learning rate."""
    train, search = _parse_search(flagfile, "float_init")
    base = f"paper/{flagfile}" if flagfile.startswith("table") else flagfile
    scratch, scratch_search = _parse_search(base, ".")
    assert train.init_from == f"runs/imagenet_{train.model}_w32a32" and train.pact_init == "stats"
    assert train.lr == pytest.approx(scratch.lr / 10) and search == scratch_search
    assert dataclasses.replace(train, init_from="", pact_init="fixed", lr=scratch.lr) == scratch
    assert {f"{kind}_{m}_{x}.flags" for kind, x in (("imagenet", "w2a2"), ("table3", "nce_w2a2"))
            for m in ("resnet18", "resnet50")} == set(FLOAT_INIT)


STUDIES = sorted(f for f in os.listdir(os.path.join(ROOT, "flags", "study")) if f.endswith(".flags"))


@pytest.mark.parametrize("flagfile", STUDIES)
def test_study_flagfiles_describe_valid_studies(flagfile):
    from nce_tf.study import flags as study_flags
    from nce_tf.study import plan

    values = _values(f"study/{flagfile}", define=study_flags.define_flags)
    study = study_flags.study_config_from_flags(values).validate()
    train, search = config_from_flags(values).validate(), search_config_from_flags(values).validate()
    runs = plan(study, train, search)
    searched = sum(m in ("random", "tas", "nce") for m in study.methods)
    fixed = len(study.methods) - searched
    structures = searched * study.searches + fixed
    searches = structures - ("original" in study.methods)
    assert len(runs) == searches + structures * study.trainings
    if flagfile == "cifar_subset_resnet8_w2a2.flags":  # the paper's toy: ResNet-8 W2A2, TAS pruning 2X
        assert (train.model, train.w_bits, train.a_bits, search.tas_space) == ("resnet8", 2, 2, "2x8")
        assert (search.search_warmup_epochs, search.search_epochs, search.arch_steps) == (4, 12, 4)
    if flagfile == "cifar_subset_resnet8_w2a2_from_trained.flags":  # issue 26's re-measurement
        assert (train.model, train.w_bits, train.a_bits, search.tas_space) == ("resnet8", 2, 2, "2x8")
        assert (search.search_warmup_epochs, search.search_epochs, search.search_lr) == (2, 10, 0.01)
        assert (train.lr, train.epochs, train.pact_init, study.searches, study.trainings) == (0.1, 30, "stats", 8, 2)
        # with the trained network given, only the searches start from it
        runs = plan(study, dataclasses.replace(train, init_from="runs/r8/w2a2_s0"), search)
        assert {r.kind for r in runs if r.train_config.init_from} == {"search"}
