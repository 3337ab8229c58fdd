r"""Compress a trained network to a budget: widths (searched or by L1 pruning), inherited weights, BN
re-estimated, a fine-tuning distilled from the original, export and report.

Examples:

    nce-tf compress --trained=runs/r20_fp --dataset=cifar10 --flops_ratio=0.5 --workdir=runs/r20_half
    nce-tf compress --trained=my_cnn.keras --dataset=npz:data.npz --memory_bytes=64Ki --w_bits=8 --a_bits=8 \
        --method=l1_global --workdir=runs/mine_64k
    nce-tf compress --trained=runs/r20_fp --flops_ratio=0.25 --epochs=0 --noexport --workdir=runs/look  # quick look

The budget is one or more ceilings below the original's cost (--flops_ratio, --params_ratio,
--memory_bytes / --memory_ratio, --bops / --bops_ratio); --method=nce|l1_uniform|l1_global|scratch;
--kd_weight (0.5 by default) distils the fine-tuning from the original; --epochs=0 stops after the
derivation and BN re-estimation. Writes WORKDIR/model.keras, WORKDIR/compress.json, WORKDIR/report.md,
WORKDIR/export/ (unless --noexport), and the search (WORKDIR/search/) and fine-tuning
(WORKDIR/finetune/) work directories. Re-running the same command resumes.
From a checkout, python tools/compress.py takes the same flags.
"""

from absl import flags

from nce_tf import cli
from nce_tf.cli import config_flags

config_flags.define_flags(compress=True)
flags.adopt_module_key_flags(config_flags)


def main(argv):
    cli.no_positional(argv)
    settings = config_flags.compress_configs_from_flags()  # validated before TensorFlow loads
    cli.load_tensorflow()
    # loaded after the flags are checked: a bad flag fails before TensorFlow and the jobs load
    from nce_tf.compression.pipeline import run_compress

    run_compress(*settings)
