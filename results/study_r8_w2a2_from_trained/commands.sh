#!/usr/bin/env bash
# Issue 26's re-measured Fig. 3 study (flags/study/cifar_subset_resnet8_w2a2_from_trained.flags): ResNet-8 W2A2 on the
# CIFAR-10 subset, 8 structures per searched method (random, TAS, NCE; WRPN and the original as references), each
# trained twice from scratch; the searches start from a trained ResNet-8 W2A2 with the premise recipe. All runs at
# 6544ba0, from a worktree frozen there (/work/wt_study; its runs/ is main's). Resumable: re-run to continue.
# 1. the trained networks the searches start from (done in session 6):
#   nce-tf train --flagfile=cifar_subset/w32a32 --model=resnet8 --epochs=30 --seed=0 --workdir=runs/r8/w32a32_s0
#   nce-tf train --flagfile=cifar_subset/w2a2 --model=resnet8 --epochs=15 --lr=0.01 --pact_init=stats \
#       --init_from=runs/r8/w32a32_s0 --seed=0 --workdir=runs/r8/w2a2_s0
# 2. the study (runs/r8/study.sh):
#   cd /work/wt_study && python -m nce_tf study --flagfile=study/cifar_subset_resnet8_w2a2_from_trained \
#       --init_from=runs/r8/w2a2_s0 --jobs=2 --workdir=runs/study_r8_w2a2_from_trained
# 3. when it has finished, from /work/main (this script with --finalize): its files here, the trained networks'
#    records, and the README's generated blocks.
set -e
if [ "$1" = "--finalize" ]; then
  cd /work/main
  study=runs/study_r8_w2a2_from_trained
  # study.json and the rest are rewritten by the study's own code (6544ba0) after every finished run
  cp $study/study.json $study/study.csv $study/summary.md $study/study.png results/study_r8_w2a2_from_trained/
  python -m nce_tf results collect runs/r8/w32a32_s0 runs/r8/w2a2_s0 --out=results/study_r8_w2a2_from_trained/trained.jsonl
  python -m nce_tf results readme
fi
