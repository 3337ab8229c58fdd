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
JOBS=1
SEEDS="0 1 2 3 4 5 6 7"
for arg in "$@"; do
  case $arg in
    --jobs=[1-8]) JOBS=${arg#--jobs=} ;;
    --seeds=*) SEEDS=$(echo "${arg#--seeds=}" | tr ',' ' ') ;;
    *) echo "error: unknown argument $arg; allowed: --jobs=N (1..8), --seeds=S,S,..."; exit 2 ;;
  esac
done
for s in $SEEDS; do
  case $s in [0-7]) ;; *) echo "error: invalid seed $s; allowed: 0..7 (the near-1X network pairs)"; exit 2 ;; esac
done
if [ ! -d $CODE ]; then
  (cd $MAIN && git worktree prune && git worktree add --detach $CODE $COMMIT && ln -s $MAIN/runs $CODE/runs) \
    || { echo "error: no worktree $CODE"; exit 2; }
fi
case "$(git -C $CODE rev-parse HEAD 2>/dev/null)" in $COMMIT*) ;; *) echo "error: $CODE is not at $COMMIT"; exit 2;; esac
cd $MAIN
mkdir -p runs/nce8
python results/archive_runs.py restore results/study_r8_w2a2_from_trained/state/r8 runs/r8
python results/archive_runs.py restore results/premise_near_1x/state runs/r8
[ -d $HERE/searches ] && python results/archive_runs.py restore $HERE/searches runs/nce8
cd $CODE

one_search() {
  local s=$1 merge=$2 run=runs/nce8/nce8_${2}_w2a2_s$1
  [ -f $run/arch.json ] || nice -n 15 python -m nce_tf search --flagfile=cifar_subset/nce_from_trained \
    --model=resnet8 --init_from=runs/r8/w2a2_s$s --w_bits=2 --a_bits=2 --seed=$((s + 200)) \
    --supernet_epochs=3 --search_warmup_epochs=1 --search_epochs=4 --tau_min=5 --threshold=0.3 \
    --max_width_ratio=2 --expansion_init=warm --lambda_flops=0 --lambda_params=0 --noenforce_budget \
    --pair_merge=$merge --workdir=$run > $run.log 2>&1
  mkdir -p $HERE/searches/nce8_${merge}_w2a2_s$s
  cp $run/arch.json $run/search_config.json $run/search_log.jsonl $run/supernet_training.json \
    $HERE/searches/nce8_${merge}_w2a2_s$s/
}

# One search is one job; --jobs=2 runs two at once, each claimed under a lock (runs/nce8/.S_MERGE.lock).
worker() {
  local s m fd
  for s in $SEEDS; do
    for m in cwi pad; do
      exec {fd}> runs/nce8/.${s}_$m.lock
      if flock -n $fd; then one_search $s $m; fi
      exec {fd}>&-
    done
  done
}
pids=()
for j in $(seq $JOBS); do worker & pids+=($!); sleep 5; done
status=0
for p in "${pids[@]}"; do wait $p || status=1; done
exit $status
