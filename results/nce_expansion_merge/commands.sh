#!/usr/bin/env bash
# The runs of plan.md: per seed s, from the W2A2 network of near-1X pair s, two NCE searches (the paper's grid and
# threshold, warm, cost terms off) that differ only in --pair_merge (cwi, pad). At one frozen commit (CODE, runs/
# linked to main's); resumable across sessions: finished searches' records are copied into searches/ (never
# checkpoints) and restored from there. The table: `python -m nce_tf results readme`.
# Usage: bash results/nce_expansion_merge/commands.sh [--jobs=N] [--seeds=0,1,...]   (the pilot: --seeds=0)
set -e
MAIN=/work/main
CODE=${CODE:-/work/wt_pad}
COMMIT=76adf3d
HERE=$MAIN/results/nce_expansion_merge
source $MAIN/results/run_lib.sh
only_common_options "$@"
frozen_worktree
cd $MAIN
mkdir -p runs/nce8
restore_r8_networks
[ -d $HERE/searches ] && python results/archive_runs.py restore $HERE/searches runs/nce8
cd $CODE

job_list() {
  local s m
  for s in $SEEDS; do for m in cwi pad; do echo ${s}_$m; done; done
}

# run_job SEED_MERGE: one search into runs/nce8/nce8_<merge>_w2a2_s<s>, its records into searches/.
run_job() {
  local s merge run
  IFS=_ read -r s merge <<< "$1"
  run=runs/nce8/nce8_${merge}_w2a2_s$s
  [ -f $run/arch.json ] || nice -n 15 python -m nce_tf search --flagfile=cifar_subset/nce_from_trained \
    --model=resnet8 --init_from=runs/r8/w2a2_s$s --w_bits=2 --a_bits=2 --seed=$((s + 200)) \
    --supernet_epochs=3 --search_warmup_epochs=1 --search_epochs=4 --tau_min=5 --threshold=0.3 \
    --max_width_ratio=2 --expansion_init=warm --lambda_flops=0 --lambda_params=0 --noenforce_budget \
    --pair_merge=$merge --workdir=$run > $run.log 2>&1
  mkdir -p $HERE/searches/nce8_${merge}_w2a2_s$s
  cp $run/arch.json $run/search_config.json $run/search_log.jsonl $run/supernet_training.json \
    $HERE/searches/nce8_${merge}_w2a2_s$s/
}

run_workers runs/nce8
