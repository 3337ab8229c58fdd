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
mkdir -p runs/beyond
python results/archive_runs.py restore results/study_r8_w2a2_from_trained/state/r8 runs/r8
python results/archive_runs.py restore results/premise_near_1x/state runs/r8
[ -d $HERE/searches ] && python results/archive_runs.py restore $HERE/searches runs/beyond
cd $CODE

one_search() {
  local s=$1 b=$2 run=runs/beyond/b1x_w$2a$2_s$1
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

# One search is one job; --jobs=2 runs two at once, each claimed under a lock (runs/beyond/.S_B.lock).
worker() {
  local s b fd
  for s in $SEEDS; do
    for b in 2 32; do
      exec {fd}> runs/beyond/.${s}_$b.lock
      if flock -n $fd; then one_search $s $b; fi
      exec {fd}>&-
    done
  done
}
pids=()
for j in $(seq $JOBS); do worker & pids+=($!); sleep 5; done
status=0
for p in "${pids[@]}"; do wait $p || status=1; done
exit $status
