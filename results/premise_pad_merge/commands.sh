#!/usr/bin/env bash
# The runs of plan.md: per seed s, from each network of the near-1X pair s (W2A2 and W32A32), a top2-pad search
# (the near-1X searches' settings, --pair_merge=pad) and a b1x-pad search (the beyond-1X searches' settings,
# --pair_merge=pad, --threshold=0.51); and the check run (seed 0, W2A2, interpolating, --threshold=0.51). At one
# frozen commit (CODE, runs/ linked to main's); resumable across sessions: finished searches' records are copied
# into searches/ (never checkpoints) and restored from there. The tables: `python -m nce_tf results readme`.
# Usage: bash results/premise_pad_merge/commands.sh [--jobs=N] [--seeds=0,1,...] [--arms=b1x,top2,check]
#   (the pilot: --seeds=0)
set -e
MAIN=/work/main
CODE=${CODE:-/work/wt_pad}
COMMIT=76adf3d
HERE=$MAIN/results/premise_pad_merge
ARMS="b1x top2 check"
source $MAIN/results/run_lib.sh
for arg in "$@"; do
  common_option "$arg" && continue
  case $arg in
    --arms=*) ARMS=$(echo "${arg#--arms=}" | tr ',' ' ') ;;
    *) echo "error: unknown argument $arg; allowed: --jobs=N (1..8), --seeds=S,S,..., --arms=b1x,top2,check"; exit 2 ;;
  esac
done
check_seeds
for a in $ARMS; do
  case $a in b1x|top2|check) ;; *) echo "error: invalid arm $a; allowed: b1x, top2, check"; exit 2 ;; esac
done
frozen_worktree
cd $MAIN
mkdir -p runs/pad
restore_r8_networks
[ -d $HERE/searches ] && python results/archive_runs.py restore $HERE/searches runs/pad
cd $CODE

# Jobs ARM_SEED_BITS in order: per seed, each arm at W2A2 then W32A32 (the check run at seed 0, W2A2 only).
job_list() {
  local s a b
  for s in $SEEDS; do
    for a in $ARMS; do
      for b in 2 32; do
        [ $a = check ] && { [ $s = 0 ] && [ $b = 2 ] || continue; }
        echo ${a}_${s}_$b
      done
    done
  done
}

# run_job ARM_SEED_BITS: one search into runs/pad/<arm>_w<b>a<b>_s<s>, its records into searches/.
run_job() {
  local arm s b name run args
  IFS=_ read -r arm s b <<< "$1"
  name=${arm}_w${b}a${b}_s$s
  [ $arm = check ] && name=check_b1x_cwi_t051_w${b}a${b}_s$s
  run=runs/pad/$name
  case $arm in
    top2) args="--flagfile=cifar_subset/tas_from_trained --seed=$s --search_epochs=3 --pair_merge=pad" ;;
    b1x) args="--flagfile=cifar_subset/nce_from_trained --seed=$((s + 100)) --search_epochs=4 --threshold=0.51
               --max_width_ratio=1.125 --expansion_init=warm --lambda_flops=0 --lambda_params=0 --noenforce_budget
               --pair_merge=pad" ;;
    check) args="--flagfile=cifar_subset/nce_from_trained --seed=$((s + 100)) --search_epochs=4 --threshold=0.51
                 --max_width_ratio=1.125 --expansion_init=warm --lambda_flops=0 --lambda_params=0 --noenforce_budget" ;;
  esac
  # shellcheck disable=SC2086  # args is a list of flags
  [ -f $run/arch.json ] || nice -n 15 python -m nce_tf search $args --model=resnet8 --init_from=runs/r8/w${b}a${b}_s$s \
    --w_bits=$b --a_bits=$b --supernet_epochs=3 --search_warmup_epochs=1 --tau_min=5 --width_ratios=0.875,1 \
    --workdir=$run > $run.log 2>&1
  mkdir -p $HERE/searches/$name
  cp $run/arch.json $run/search_config.json $run/search_log.jsonl $run/supernet_training.json $HERE/searches/$name/
}

run_workers runs/pad
