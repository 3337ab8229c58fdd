#!/usr/bin/env bash
# Session 3: after the seed-100 ground truth, the searches from trained networks at both precisions, seeds 0-2
# (recipe of runs/recipe/w2a2_sp3: 3 single-path epochs, 1 warm-up, 1 search epoch), then the seed-101 ground truth.
cd /work/main
note() { echo "$1 $(date -u +%FT%TZ)" >> runs/gt/queue.out; }
while [ ! -f runs/gt/ground_truth_s100.json ]; do sleep 20; done
pkill -f runs/gt/queue.sh; sleep 1; pkill -f "ground_truth_seeds=100,101"; sleep 5
note "queue2: seed-101 ground truth paused for the searches"
search() {  # bits seed
  local b=$1 s=$2 tag=w${1}a${1}_s$2
  nce-tf search --flagfile=cifar_subset/nce_from_trained --init_from=runs/premise/$tag --w_bits=$b --a_bits=$b --seed=$s \
    --supernet_epochs=3 --search_warmup_epochs=1 --search_epochs=1 --workdir=runs/recipe/sp3_$tag > runs/recipe/sp3_$tag.log 2>&1
  note "search sp3_$tag rc=$?"
}
search 32 0; search 2 1; search 32 1; search 2 2; search 32 2
RUNS=runs/premise/w32a32_s0,runs/premise/w2a2_s0,runs/premise/w32a32_s1,runs/premise/w2a2_s1,runs/premise/w32a32_s2,runs/premise/w2a2_s2
ROWS=s2_b0_b_conv,s3_b1_a_conv,s1_b1_b_conv,s3_b2_a_conv
nce-tf analyze sensitivity --runs=$RUNS --out=runs/premise/sensitivity --ground_truth_rows=$ROWS --ground_truth_ratios=0.5 --ground_truth_labels=W2A2 --ground_truth_seeds=100,101 >> runs/gt/gt.log 2>&1
note "queue2: seeds 100,101 done rc=$?"
