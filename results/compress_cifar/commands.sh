#!/usr/bin/env bash
# Issue 28's CIFAR comparison, continued (replaces queue.sh and queue2.sh, whose last run it waits for): the same runs, each
# cell at a pinned commit, checked out in the frozen worktree CODE between runs (never during one): W32 cells at
# 92281e8 (no PACT site, so 3ad2380's clip calibration does not touch them), W8A8 cells at 8a07e36 (with it, and the export fixes for 8-bit grids and int32 biases).
# Runs from inside CODE (python -m puts the working directory first on sys.path; runs/ is linked to main's).
CODE=${CODE:-/work/wt_queue}
cd $CODE
EPOCHS=${EPOCHS:-3}
note() { echo "$1 $(date -u +%FT%TZ)" >> runs/compress_cifar/queue.out; }
while pgrep -f "nce_tf compress --trained=runs/premise" > /dev/null; do sleep 20; done
for r in 0.5 0.25; do for b in 32 8; do for s in 0 1 2; do for m in l1_uniform l1_global scratch nce; do
  tag=r${r}_w${b}_${m}_s$s
  [ -f runs/compress_cifar/$tag/compress.json ] && continue
  if [ $b = 32 ]; then commit=92281e8; else commit=8a07e36; fi
  git -C $CODE checkout -q --detach $commit || { note "$tag checkout $commit failed"; exit 1; }
  nice -n 15 python -m nce_tf compress --trained=runs/premise/w32a32_s$s --flagfile=cifar_subset/base --flops_ratio=$r --params_ratio=0 \
    --w_bits=$b --a_bits=$b --method=$m --epochs=$EPOCHS --seed=$s --workdir=runs/compress_cifar/$tag \
    > runs/compress_cifar/$tag.log 2>&1
  note "$tag rc=$? commit=$commit"
done; done; done; done
# Then, from /work/main: one record per finished compression, and the README's two tables.
#   nce-tf results collect runs/compress_cifar/r*_s[0-9] --out=results/compress_cifar.jsonl
#   nce-tf results readme
