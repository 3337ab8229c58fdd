r"""Benchmarks, printed as ratios measured interleaved in one process (this machine is noisy).

Examples:

    nce-tf bench search --json      # search step vs 2 plain W2A2 steps at the mean widths
    nce-tf bench qat --json         # W2A2 QAT step vs float step of the same network
    nce-tf bench tfmot --json       # nce-tf's W2A2 QAT vs tfmot's (needs pip install -e .[tfmot])
    nce-tf bench mixed --json       # W2A2 training and K = 8 search steps, mixed_bfloat16 vs float32

Subcommands:
    search   ratio = search_step / (2 * plain_step), at K = 8 and with every layer at K = 16
             (keys ratio_k8, ratio_k16; target <= 1.3). See nce_tf/benchmarks/search_step.py.
    qat      ratio = W2A2 QAT step / float step (key ratio). See nce_tf/benchmarks/qat_step.py.
    tfmot    nce-tf vs tfmot W2A2 QAT of ResNet-20: step-time and peak-memory ratios, test accuracy after
             the same schedule; each framework in its own process. See nce_tf/benchmarks/qat_compare.py.
    mixed    ratio = step under --mixed_policy / float32 step, for a W2A2 training step (train_ratio) and a
             K = 8 search step (search_ratio). See nce_tf/benchmarks/mixed_step.py.

From a checkout, python tools/bench.py takes the same arguments.
"""

import json
import subprocess
import sys

from absl import flags

from nce_tf import cli, provenance
from nce_tf.choices import MIXED_PRECISION
from nce_tf.cli import child
from nce_tf.models import zoo

SUBCOMMANDS = ("search", "qat", "tfmot", "mixed")
flags.DEFINE_string("model", "resnet20", "Zoo model to benchmark.")
flags.DEFINE_integer("batch_size", 128, "Batch size (of each half for the search step).")
flags.DEFINE_integer("steps", 20, "Timed steps per measurement (medians are reported).")
flags.DEFINE_integer("warmup_steps", 5, "Untimed steps first (tracing, oneDNN primitive creation).")
flags.DEFINE_integer("train_epochs", 4, "tfmot: epochs of the short training both frameworks get.")
flags.DEFINE_integer("seed", 0, "tfmot: seeds both frameworks' initialisation and data order (the synthetic task "
                     "is fixed).")
flags.DEFINE_string("tfmot_python", sys.executable, "tfmot: the Python that has tensorflow-model-optimization.")
flags.DEFINE_string("mixed_policy", "mixed_bfloat16", f"mixed: the policy timed against float32: {', '.join(MIXED_PRECISION[1:])}.")
flags.DEFINE_boolean("json", False, "Print one JSON object on stdout (progress goes to stderr).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) != 2 or argv[1] not in SUBCOMMANDS:
        cli.fail(f"Expected one subcommand. Received: {argv[1:]!r}. Allowed: {', '.join(SUBCOMMANDS)}.")
    zoo.get_spec(FLAGS.model)
    for name in ("batch_size", "steps", "warmup_steps"):
        if FLAGS[name].value < 1:
            cli.fail(f"Invalid {name}. Received: {name}={FLAGS[name].value}. Allowed: >= 1.")
    if FLAGS.mixed_policy not in MIXED_PRECISION[1:]:
        cli.fail(f"Invalid mixed_policy. Received: mixed_policy={FLAGS.mixed_policy!r}. "
                 f"Allowed: {', '.join(MIXED_PRECISION[1:])}.")
    log = (lambda m: print(m, file=sys.stderr, flush=True)) if FLAGS.json else print
    if argv[1] == "tfmot":
        return _tfmot(log)
    cli.load_tensorflow()
    # loaded after the flags are checked: a bad flag fails before TensorFlow and the jobs load
    from nce_tf.benchmarks import mixed_step, qat_step, search_step

    log = (lambda m: print(m, file=sys.stderr, flush=True)) if FLAGS.json else print
    bench = {"search": search_step, "qat": qat_step, "mixed": mixed_step}[argv[1]]
    extra = {"policy": FLAGS.mixed_policy} if argv[1] == "mixed" else {}
    result = bench.run(FLAGS.model, FLAGS.batch_size, FLAGS.steps, FLAGS.warmup_steps, log=log, **extra)
    result["provenance"] = provenance.record()  # which code and libraries these times are of
    if FLAGS.json:
        print(json.dumps(result))
    elif argv[1] == "mixed":
        print(f"{FLAGS.mixed_policy} / float32: train_ratio = {result['train_ratio']:.3f}, "
              f"search_ratio = {result['search_ratio']:.3f}")
    elif argv[1] == "search":
        print(f"ratio_k8 = {result['ratio_k8']:.3f}, ratio_k16 = {result['ratio_k16']:.3f} (target <= 1.3)")
    else:
        print(f"ratio = {result['ratio']:.3f}")


def _tfmot(log):
    results = {}
    for framework, python in (("nce", sys.executable), ("tfmot", FLAGS.tfmot_python)):
        log(f"running {framework} ({FLAGS.train_epochs} epochs of training after {FLAGS.steps} timed steps)...")
        proc = subprocess.run(
            [python, "-m", "nce_tf.benchmarks.qat_compare", f"--framework={framework}", f"--steps={FLAGS.steps}",
             f"--warmup_steps={FLAGS.warmup_steps}", f"--train_epochs={FLAGS.train_epochs}", f"--seed={FLAGS.seed}"],
            capture_output=True, text=True, env=child.env())
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            cli.fail(f"The {framework} benchmark process failed ({last}). Received: tfmot_python={python!r}.")
        results[framework] = json.loads(proc.stdout.strip().splitlines()[-1])
    n, t = results["nce"], results["tfmot"]
    out = {"step_ratio": n["step_s"] / t["step_s"], "memory_ratio": n["peak_rss_mb"] / t["peak_rss_mb"],
           "seed": FLAGS.seed, "nce": n, "tfmot": t, "provenance": provenance.record()}
    if FLAGS.json:
        print(json.dumps(out))
    else:
        print(f"step nce/tfmot = {out['step_ratio']:.3f}, peak memory nce/tfmot = {out['memory_ratio']:.3f}, "
              f"test accuracy nce {n['test_accuracy']:.3f} vs tfmot {t['test_accuracy']:.3f}")

