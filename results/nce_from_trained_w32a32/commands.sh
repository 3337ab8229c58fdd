#!/usr/bin/env bash
# The runs of plan.md: per seed s, an NCE search with the from-trained recipe at W32A32 from the subset table's
# W32A32 network of seed s, at 866426b (the commit of the table's W2A2 searches). Resumable across sessions:
# finished searches' records are copied into searches/ (never checkpoints) and restored from there; the
# start networks come back from results/cifar_subset/state/. The table: `python -m nce_tf results readme`.
# Usage: bash results/nce_from_trained_w32a32/commands.sh [--jobs=N] [--seeds=0,1,2]
set -e
MAIN=/work/main
CODE=${CODE:-/work/wt_run}
COMMIT=866426b
HERE=$MAIN/results/nce_from_trained_w32a32
source $MAIN/results/run_lib.sh
SEEDS="0 1 2"
only_common_options "$@"
for s in $SEEDS; do
  case $s in [0-2]) ;; *) echo "error: invalid seed $s; allowed: 0, 1, 2 (the subset table's W32A32 networks)"; exit 2 ;; esac
done
frozen_worktree
cd $MAIN
mkdir -p runs/nce32
python results/archive_runs.py restore results/cifar_subset/state runs/cifar_subset_v2
[ -d $HERE/searches ] && python results/archive_runs.py restore $HERE/searches runs/nce32
cd $CODE

job_list() { local s; for s in $SEEDS; do echo $s; done; }

# run_job SEED: one search into runs/nce32/nce_from_trained_w32a32_s<seed>, its records into searches/.
run_job() {
  local name=nce_from_trained_w32a32_s$1 run
  run=runs/nce32/$name
  [ -f $run/arch.json ] || nice -n 15 python -m nce_tf search --flagfile=cifar_subset/nce_from_trained --seed=$1 \
    --w_bits=32 --a_bits=32 --init_from=runs/cifar_subset_v2/w32a32_s$1 --workdir=$run > $run.log 2>&1
  mkdir -p $HERE/searches/$name
  cp $run/arch.json $run/search_config.json $run/search_log.jsonl $HERE/searches/$name/
  [ ! -f $run/supernet_training.json ] || cp $run/supernet_training.json $HERE/searches/$name/
}

run_workers runs/nce32
