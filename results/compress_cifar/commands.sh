#!/usr/bin/env bash
# Issue 28's CIFAR comparison: ResNet-20 trained in float (runs/premise/w32a32_s$s, 72.89 +- 0.74%),
# compressed to 0.5x and 0.25x MACs at W32 and W8A8, methods nce / l1_uniform / l1_global / scratch,
# the same fine-tuning epochs for all; seed s compresses the float network of seed s (the float network and the
# compression's seeds are the unit). Cells are filled seed-innermost so each (ratio, bits) cell completes in turn.
# Resumable: a finished compression is not redone. Runs the code of a frozen worktree (CODE, with runs/ linked to
# main's), from inside it: `python -m` puts the working directory first on sys.path, so run from /work/main it
# imported main's code whatever PYTHONPATH said (the first attempt's runs recorded main's dirty state).
CODE=${CODE:-/work/wt_queue}
cd $CODE
EPOCHS=${EPOCHS:-3}
note() { echo "$1 $(date -u +%FT%TZ)" >> runs/compress_cifar/queue.out; }
for r in 0.5 0.25; do for b in 32 8; do for s in 0 1 2; do for m in l1_uniform l1_global scratch nce; do
  tag=r${r}_w${b}_${m}_s$s
  [ -f runs/compress_cifar/$tag/compress.json ] && continue
  nice -n 15 python -m nce_tf compress --trained=runs/premise/w32a32_s$s --flagfile=cifar_subset/base --flops_ratio=$r --params_ratio=0 \
    --w_bits=$b --a_bits=$b --method=$m --epochs=$EPOCHS --seed=$s --workdir=runs/compress_cifar/$tag \
    > runs/compress_cifar/$tag.log 2>&1
  note "$tag rc=$?"
done; done; done; done
# Then, from /work/main: one record per finished compression, and the README's two tables.
#   nce-tf results collect runs/compress_cifar/r*_s[0-9] --out=results/compress_cifar.jsonl
#   nce-tf results readme
