#!/usr/bin/env bash
# The runs of plan.md: per seed s an NCE search from each network of the near-1X pair s (W2A2 and W32A32),
# candidates 0.875n and n, one expansion step to 1.125n (warm), cost terms off, search seed s + 100. At one
# frozen commit (CODE, runs/ linked to main's); resumable across sessions: finished searches' records are
# copied into searches/ (never checkpoints) and restored from there. After each seed, from main:
#   python -m nce_tf search-summary results/premise_beyond_1x/searches/* --json=results/premise_beyond_1x/summary.json
# Usage: bash results/premise_beyond_1x/commands.sh [--jobs=N] [--seeds=0,1,...]   (the pilot: --seeds=0)
set -e
MAIN=/work/main
CODE=${CODE:-/work/wt_b1x}
COMMIT=da2d510
HERE=$MAIN/results/premise_beyond_1x
source $MAIN/results/run_lib.sh
only_common_options "$@"
frozen_worktree
cd $MAIN
mkdir -p runs/beyond
restore_r8_networks
[ -d $HERE/searches ] && python results/archive_runs.py restore $HERE/searches runs/beyond
cd $CODE

job_list() {
  local s b
  for s in $SEEDS; do for b in 2 32; do echo ${s}_$b; done; done
}

# run_job SEED_BITS: one search, its records into searches/, the summary updated.
run_job() {
  local s=${1%_*} b=${1#*_} run
  run=runs/beyond/b1x_w${b}a${b}_s$s
  [ -f $run/arch.json ] || nice -n 15 python -m nce_tf search --flagfile=cifar_subset/nce_from_trained \
    --model=resnet8 --init_from=runs/r8/w${b}a${b}_s$s --w_bits=$b --a_bits=$b --seed=$((s + 100)) \
    --supernet_epochs=3 --search_warmup_epochs=1 --search_epochs=4 --tau_min=5 --width_ratios=0.875,1 \
    --threshold=0.6 --max_width_ratio=1.125 --expansion_init=warm --lambda_flops=0 --lambda_params=0 \
    --noenforce_budget --workdir=$run > $run.log 2>&1
  mkdir -p $HERE/searches/b1x_w${b}a${b}_s$s
  cp $run/arch.json $run/search_config.json $run/search_log.jsonl $run/supernet_training.json \
    $HERE/searches/b1x_w${b}a${b}_s$s/
  (cd $MAIN && python -m nce_tf search-summary results/premise_beyond_1x/searches/b1x_* \
    --json=results/premise_beyond_1x/summary.json > /dev/null) \
    || echo "warning: results/premise_beyond_1x/summary.json not updated after $run; the runs go on" >&2
}

run_workers runs/beyond
