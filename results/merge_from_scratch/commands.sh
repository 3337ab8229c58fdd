#!/usr/bin/env bash
# The runs of plan.md: per seed s a W32A32 ResNet-8 super-net trained from scratch under the interpolating merge
# (15 warm-up epochs), then the tie probe from its last checkpoint with each merge (records in tie_probe/). At one
# frozen commit (CODE, runs/ linked to main's; the probe is its results/premise_beyond_1x/tie_probe.py);
# resumable: finished searches' records are copied into searches/, a probe's record is its JSON (a search's
# checkpoint stays in runs/scratch only, so a probe needs its search's machine).
# Usage: bash results/merge_from_scratch/commands.sh [--jobs=N] [--seeds=0,1,...] [--warmup=15]
set -e
MAIN=/work/main
CODE=${CODE:-/work/wt_scratch}
COMMIT=5455eb3
HERE=$MAIN/results/merge_from_scratch
JOBS=1
SEEDS="0 1 2 3 4 5 6 7"
WARMUP=15
for arg in "$@"; do
  case $arg in
    --jobs=[1-8]) JOBS=${arg#--jobs=} ;;
    --seeds=*) SEEDS=$(echo "${arg#--seeds=}" | tr ',' ' ') ;;
    --warmup=15|--warmup=30) WARMUP=${arg#--warmup=} ;;
    *) echo "error: unknown argument $arg; allowed: --jobs=N (1..8), --seeds=S,S,..., --warmup=15|30"; exit 2 ;;
  esac
done
for s in $SEEDS; do
  case $s in [0-7]) ;; *) echo "error: invalid seed $s; allowed: 0..7"; exit 2 ;; esac
done
if [ ! -d $CODE ]; then
  (cd $MAIN && git worktree prune && git worktree add --detach $CODE $COMMIT && ln -s $MAIN/runs $CODE/runs) \
    || { echo "error: no worktree $CODE"; exit 2; }
fi
case "$(git -C $CODE rev-parse HEAD 2>/dev/null)" in $COMMIT*) ;; *) echo "error: $CODE is not at $COMMIT"; exit 2;; esac
mkdir -p $MAIN/runs/scratch $HERE/tie_probe_e$WARMUP
cd $CODE

one_seed() {
  local s=$1 run=runs/scratch/scratch_w32a32_e${WARMUP}_s$1 merge
  [ -f $run/arch.json ] || nice -n 15 python -m nce_tf search --flagfile=cifar_subset/nce_from_trained \
    --model=resnet8 --w_bits=32 --a_bits=32 --seed=$((s + 300)) --width_ratios=0.875,1 --max_width_ratio=1.125 \
    --threshold=0.99 --expansion_init=warm --lambda_flops=0 --lambda_params=0 --noenforce_budget \
    --supernet_epochs=0 --search_warmup_epochs=$WARMUP --search_epochs=1 --tau_min=5 --search_lr=0.1 \
    --workdir=$run > $run.log 2>&1
  mkdir -p $HERE/searches/scratch_w32a32_e${WARMUP}_s$s
  cp $run/arch.json $run/search_config.json $run/search_log.jsonl $HERE/searches/scratch_w32a32_e${WARMUP}_s$s/
  for merge in cwi pad; do
    local out=$HERE/tie_probe_e$WARMUP/w32a32_s$s$([ $merge = pad ] && echo _pad)
    [ -f $out.json ] || nice -n 15 python results/premise_beyond_1x/tie_probe.py --from_search=$run --merge=$merge \
      --batches=40 --json=$out.json > $out.log 2>&1
    rm -f $out.log
  done
}

worker() {
  local s fd
  for s in $SEEDS; do
    exec {fd}> runs/scratch/.seed_${WARMUP}_$s.lock
    if flock -n $fd; then one_seed $s; fi
    exec {fd}>&-
  done
}
pids=()
for j in $(seq $JOBS); do worker & pids+=($!); sleep 5; done
status=0
for p in "${pids[@]}"; do wait $p || status=1; done
exit $status
