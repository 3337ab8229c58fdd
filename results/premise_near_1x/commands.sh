#!/usr/bin/env bash
# The main runs of plan.md (as amended by its pilot): per seed s = 0..7 a ResNet-8 W32A32 network and the W2A2 one
# fine-tuned from it (seed 0: the study's, in results/study_r8_w2a2_from_trained/state/r8), then TAS 1x8 searches
# from each with candidates 0.875n and n, 3 search epochs at tau 5. At one frozen commit (CODE, runs/ linked to
# main's); resumable across sessions: finished networks are kept in state/ (their model.keras), finished searches'
# records in searches/ (never checkpoints). After each seed, from main (its code reads the size measures): the
# searches' summary.json (nce-tf search-summary) and the README's premise-near-1x table (nce-tf results readme):
#   python -m nce_tf search-summary results/premise_near_1x/searches/top2_* --json=results/premise_near_1x/summary.json
# Usage: bash results/premise_near_1x/commands.sh [--jobs=N] [--seeds=0,1,...]
# With --jobs=2 two workers take the seeds in order, each seed claimed under a lock (runs/near_main/.S.lock;
# results/run_lib.sh), so a seed is never run twice at once; a seed's runs are sequential (its searches start
# from its networks).
set -e
MAIN=/work/main
CODE=${CODE:-/work/wt_run}
COMMIT=866426b
HERE=$MAIN/results/premise_near_1x
source $MAIN/results/run_lib.sh
only_common_options "$@"
frozen_worktree
cd $MAIN
python results/archive_runs.py restore results/study_r8_w2a2_from_trained/state/r8 runs/r8
[ -d $HERE/state ] && python results/archive_runs.py restore $HERE/state runs/r8
[ -d $HERE/searches ] && python results/archive_runs.py restore $HERE/searches runs/near_main
mkdir -p runs/near_main
cd $CODE

job_list() {
  echo $SEEDS | tr ' ' '\n'
}

# run_job SEED: the seed's two networks if missing, then its two searches.
run_job() {
  local s=$1 b run
  [ -f runs/r8/w32a32_s$s/metrics.json ] || nice -n 15 python -m nce_tf train --flagfile=cifar_subset/w32a32 \
    --model=resnet8 --epochs=30 --seed=$s --workdir=runs/r8/w32a32_s$s > runs/r8_w32a32_s$s.log 2>&1
  [ -f runs/r8/w2a2_s$s/metrics.json ] || nice -n 15 python -m nce_tf train --flagfile=cifar_subset/w2a2 \
    --model=resnet8 --epochs=15 --lr=0.01 --pact_init=stats --init_from=runs/r8/w32a32_s$s --seed=$s \
    --workdir=runs/r8/w2a2_s$s > runs/r8_w2a2_s$s.log 2>&1
  [ $s = 0 ] || (cd $MAIN && python results/archive_runs.py save runs/r8 $HERE/state w32a32_s$s w2a2_s$s)  # 0: the study's
  for b in 2 32; do
    run=runs/near_main/top2_w${b}a${b}_s$s
    [ -f $run/arch.json ] || nice -n 15 python -m nce_tf search --flagfile=cifar_subset/tas_from_trained --model=resnet8 \
      --init_from=runs/r8/w${b}a${b}_s$s --w_bits=$b --a_bits=$b --seed=$s --supernet_epochs=3 \
      --search_warmup_epochs=1 --search_epochs=3 --tau_min=5 --width_ratios=0.875,1 --workdir=$run > $run.log 2>&1
    mkdir -p $HERE/searches/top2_w${b}a${b}_s$s
    cp $run/arch.json $run/search_config.json $run/search_log.jsonl $run/supernet_training.json \
      $HERE/searches/top2_w${b}a${b}_s$s/
  done
  (cd $MAIN && python -m nce_tf search-summary results/premise_near_1x/searches/top2_* \
    --json=results/premise_near_1x/summary.json > /dev/null && python -m nce_tf results readme > /dev/null) \
    || echo "warning: results/premise_near_1x/summary.json or the README not updated after seed $s; the runs go on" >&2
}

run_workers runs/near_main
