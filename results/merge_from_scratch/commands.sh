#!/usr/bin/env bash
# The runs of plan.md: per seed s a W32A32 ResNet-8 super-net trained from scratch under the interpolating merge
# (15 warm-up epochs), then the tie probe from its last checkpoint with each merge (records in tie_probe/). At one
# frozen commit (CODE, runs/ linked to main's; the probe is its results/premise_beyond_1x/tie_probe.py, on its
# nce_tf); resumable: finished searches' records are copied into searches/, a probe's record is its JSON (a
# search's checkpoint stays in runs/scratch only, so a probe needs its search's machine).
# Usage: bash results/merge_from_scratch/commands.sh [--jobs=N] [--seeds=0,1,...] [--warmup=15|30]
set -e
MAIN=/work/main
CODE=${CODE:-/work/wt_scratch}
COMMIT=5455eb3
HERE=$MAIN/results/merge_from_scratch
WARMUP=15
source $MAIN/results/run_lib.sh
for arg in "$@"; do
  common_option "$arg" && continue
  case $arg in
    --warmup=15|--warmup=30) WARMUP=${arg#--warmup=} ;;
    *) echo "error: unknown argument $arg; allowed: --jobs=N (1..8), --seeds=S,S,..., --warmup=15|30"; exit 2 ;;
  esac
done
check_seeds
frozen_worktree
mkdir -p $MAIN/runs/scratch $HERE/tie_probe_e$WARMUP
cd $CODE

job_list() {
  local s
  for s in $SEEDS; do echo ${WARMUP}_$s; done
}

# run_job WARMUP_SEED: the search, then its two probes (a seed's steps are sequential: the probes read its checkpoint).
run_job() {
  local s=${1#*_} run merge out
  run=runs/scratch/scratch_w32a32_e${WARMUP}_s$s
  [ -f $run/arch.json ] || nice -n 15 python -m nce_tf search --flagfile=cifar_subset/nce_from_trained \
    --model=resnet8 --w_bits=32 --a_bits=32 --seed=$((s + 300)) --width_ratios=0.875,1 --max_width_ratio=1.125 \
    --threshold=0.99 --expansion_init=warm --lambda_flops=0 --lambda_params=0 --noenforce_budget \
    --supernet_epochs=0 --search_warmup_epochs=$WARMUP --search_epochs=1 --tau_min=5 --search_lr=0.1 \
    --workdir=$run > $run.log 2>&1
  mkdir -p $HERE/searches/scratch_w32a32_e${WARMUP}_s$s
  cp $run/arch.json $run/search_config.json $run/search_log.jsonl $HERE/searches/scratch_w32a32_e${WARMUP}_s$s/
  for merge in cwi pad; do
    case $merge in pad) out=$HERE/tie_probe_e$WARMUP/w32a32_s${s}_pad ;; *) out=$HERE/tie_probe_e$WARMUP/w32a32_s$s ;; esac
    # PYTHONPATH: the script's own directory is first on its path, so nce_tf would come from main's install
    [ -f $out.json ] || PYTHONPATH=$CODE nice -n 15 python results/premise_beyond_1x/tie_probe.py --from_search=$run \
      --merge=$merge --batches=40 --json=$out.json > $out.log 2>&1
    rm -f $out.log
  done
}

run_workers runs/scratch
