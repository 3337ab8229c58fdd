#!/usr/bin/env bash
# Session 3: ground truth of the probe at W2A2, 0.5x, four layers spread over the probe's range; seed 100 first
# (a complete 4-layer agreement), then seed 101 (resumes: finished trainings are skipped).
cd /work/main
note() { echo "$1 $(date -u +%FT%TZ)" >> runs/gt/queue.out; }
RUNS=runs/premise/w32a32_s0,runs/premise/w2a2_s0,runs/premise/w32a32_s1,runs/premise/w2a2_s1,runs/premise/w32a32_s2,runs/premise/w2a2_s2
ROWS=s2_b0_b_conv,s3_b1_a_conv,s1_b1_b_conv,s3_b2_a_conv
note "start"
nce-tf analyze sensitivity --runs=$RUNS --out=runs/premise/sensitivity --ground_truth_rows=$ROWS --ground_truth_ratios=0.5 --ground_truth_labels=W2A2 --ground_truth_seeds=100 >> runs/gt/gt.log 2>&1
note "seed 100 done rc=$?"
cp -r runs/premise/sensitivity/ground_truth.md runs/gt/ground_truth_s100.md; cp runs/premise/sensitivity/ground_truth.json runs/gt/ground_truth_s100.json
nce-tf analyze sensitivity --runs=$RUNS --out=runs/premise/sensitivity --ground_truth_rows=$ROWS --ground_truth_ratios=0.5 --ground_truth_labels=W2A2 --ground_truth_seeds=100,101 >> runs/gt/gt.log 2>&1
note "seeds 100,101 done rc=$?"
# Session 4: the seed-101 trainings resumed (runs/gt/queue3.sh, the same analyze line with seeds 100,101), then:
# cp runs/premise/sensitivity/ground_truth.{json,md} results/premise_ground_truth/ and each *_s101 training's
# metrics.json and config.json into results/premise_ground_truth/w2a2/.
