#!/usr/bin/env bash
# Issue 28's last cell (0.25x of the MACs at W8A8), session 8. The earlier cells' trained networks
# (runs/premise/w32a32_s*) and the compressions in progress were lost with the previous session's
# machine, so this cell compresses its own trained networks: the same command as the premise's
# (cifar_subset/w32a32, 30 epochs, seed s), re-run at one frozen commit (CODE, runs/ linked to main's),
# recorded in results/compress_cifar/bases_r0.25_w8.jsonl. Every method of a seed compresses the same
# trained network, so the cell's paired comparisons are as in the other cells; its accuracies are not
# comparable run for run with the other cells' (other trained networks).
# Usage: cell_r0.25_w8.sh SEED... (one lane; two lanes at a time on 2 cores). Resumable.
CODE=${CODE:-/work/wt_run}
cd $CODE || exit 2
EPOCHS=${EPOCHS:-3}
out=runs/compress_cifar
note() { echo "$1 $(date -u +%FT%TZ)" >> $out/cell.out; }
for s in "$@"; do
  base=$out/base_w32a32_s$s
  if [ ! -f $base/metrics.json ]; then
    nice -n 10 python -m nce_tf train --flagfile=cifar_subset/w32a32 --epochs=30 --seed=$s --workdir=$base > $base.log 2>&1
    note "base s$s rc=$?"
  fi
  for m in l1_uniform l1_global scratch nce; do
    tag=r0.25_w8_${m}_s$s
    [ -f $out/$tag/compress.json ] && continue
    nice -n 10 python -m nce_tf compress --trained=$base --flagfile=cifar_subset/base --flops_ratio=0.25 --params_ratio=0 \
      --w_bits=8 --a_bits=8 --method=$m --epochs=$EPOCHS --seed=$s --workdir=$out/$tag > $out/$tag.log 2>&1
    note "$tag rc=$?"
  done
done
