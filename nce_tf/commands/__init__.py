"""The ``nce-tf`` command: one installed program, a subcommand per tool.

``nce-tf NAME [flags]`` imports only ``nce_tf.commands.<NAME>`` and runs its ``main(argv)``
through :func:`nce_tf.cli.run`: absl flags are global to a process, so each tool defines its
flags when its module is imported and no other tool's flags are in the way.  The scripts in a
checkout's ``tools/`` call :func:`launch` the same way (``python tools/search.py`` is
``nce-tf search``).

Example::

    nce-tf search --flagfile=quickstart --workdir=runs/qs_search
    nce-tf count --model=resnet20 --w_bits=2 --a_bits=2
    nce-tf presets
"""

import importlib
import sys

# name -> (module under nce_tf.commands, what it does); the order is the help's.
COMMANDS = {
    "nce": ("nce", "the NCE pipeline: search, derivation, final QAT training, report"),
    "search": ("search", "search channel widths (NCE, TAS, random, WRPN) -> arch.json"),
    "train": ("train", "train a zoo model or an arch.json network, float or WxAy QAT"),
    "count": ("count", "exact MACs, parameters, weight memory and BOPs, per layer"),
    "compress": ("compress", "compress a trained network to a MACs / PARAMs / memory / BOPs budget: search or L1 "
                             "pruning, inherited weights, distilled fine-tuning, export, report"),
    "export": ("export", "export a trained work directory: .keras, SavedModel, int8 and int4 TFLite, 2-bit weights"),
    "analyze": ("analyze", "the paper's figures from a work directory (channels, stdev, tradeoff, kendall)"),
    "bench": ("bench", "benchmarks: search step, QAT step, tfmot"),
    "study": ("study", "random vs TAS vs NCE vs WRPN vs the original (the paper's Fig. 3)"),
    "search-summary": ("search_summary", "what finished searches derived: expansion, cost ratios, CE Kendall"),
    "cifar-subset-table": ("cifar_subset_table", "the README's ResNet-20 table on the CIFAR-10 subset"),
    "results": ("results", "per-run records under results/ (collect) and the README tables made from them (readme)"),
    "presets": ("presets", "list the shipped flagfiles, usable as --flagfile=NAME"),
}


def usage():
    """The program's help: its commands, one line each."""
    width = max(map(len, COMMANDS))
    lines = ["usage: nce-tf COMMAND [flags]   (nce-tf COMMAND --help lists a command's flags)", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def launch(name, argv=None):
    """Runs one command with nce-tf's conventions (one-line errors, exit status 2).

    Args:
        name: a key of :data:`COMMANDS`.
        argv: its command line, program name first (default ``sys.argv``).
    """
    # absl and the tool wiring only when a command runs (python -m nce_tf --help stays instant)
    from absl import flags

    from nce_tf import cli

    module = importlib.import_module(f"nce_tf.commands.{COMMANDS[name][0]}")
    argv = list(sys.argv if argv is None else argv)
    # absl's --help prints __main__'s docstring and the key flags of the module named sys.argv[0].
    sys.argv[0] = argv[0]
    sys.modules["__main__"].__doc__ = module.__doc__
    for flag in flags.FLAGS.get_key_flags_for_module(module.__name__):
        flags.FLAGS.register_key_flag_for_module(argv[0], flag)
    cli.run(module.main, argv)


def main(argv=None):
    """``nce-tf COMMAND [flags]``: the console entry point."""
    # absl and the tool wiring only when a command runs (python -m nce_tf --help stays instant)
    from nce_tf import cli

    argv = list(sys.argv if argv is None else argv)
    if len(argv) > 1 and argv[1] in ("-h", "--help", "help"):
        try:
            print(usage(), flush=True)
        except BrokenPipeError:
            cli.reader_gone()
        return
    if len(argv) < 2 or argv[1] not in COMMANDS:
        received = repr(argv[1]) if len(argv) > 1 else "none"
        cli.fail(f"Unknown command. Received: {received}. Allowed: {', '.join(COMMANDS)} (nce-tf --help).")
    launch(argv[1], [f"nce-tf {argv[1]}", *argv[2:]])
