#!/usr/bin/env bash
# Session 4: Fig. 4c by its own protocol: TAS 1x8 searches with (W2A2) and without (W32A32) quantization,
# the sp3 recipe of results/recipe_from_trained/sp3 (from the trained network of the same precision and seed),
# seeds 0-2; the NCE W2A2 group is the sp3 searches. Waits for the seed-101 ground truth. Resumable.
cd /work/main
note() { echo "$1 $(date -u +%FT%TZ)" >> runs/fig4c/queue.out; }
while pgrep -f runs/gt/queue3.sh > /dev/null; do sleep 30; done
note "fig4c queue start"
for s in 0 1 2; do
  for b in 2 32; do
    tag=w${b}a${b}_s$s
    if [ -f runs/fig4c/tas_$tag/arch.json ]; then continue; fi
    nice -n 5 nce-tf search --flagfile=cifar_subset/nce_from_trained --mode=tas --tas_space=1x8 \
      --init_from=runs/premise/$tag --w_bits=$b --a_bits=$b --seed=$s \
      --supernet_epochs=3 --search_warmup_epochs=1 --search_epochs=1 --workdir=runs/fig4c/tas_$tag > runs/fig4c/tas_$tag.log 2>&1
    note "search tas_$tag rc=$?"
  done
done
nce-tf analyze kendall --group=TAS-W2A2=runs/fig4c/tas_w2a2_s0,runs/fig4c/tas_w2a2_s1,runs/fig4c/tas_w2a2_s2 \
  --group=TAS-W32A32=runs/fig4c/tas_w32a32_s0,runs/fig4c/tas_w32a32_s1,runs/fig4c/tas_w32a32_s2 \
  --group=NCE-W2A2=runs/recipe/w2a2_sp3,runs/recipe/sp3_w2a2_s1,runs/recipe/sp3_w2a2_s2 \
  --out=runs/fig4c/analysis > runs/fig4c/analysis.log 2>&1
note "fig4c analysis rc=$?"
