#!/usr/bin/env bash
# The README's quickstart rows re-measured (issue 26, item 5), seeds 0-2, from a worktree frozen at the commit each
# run's provenance names; then the seed-0 NCE run exported (the Export section's quickstart paragraph). The machine
# ran other niced jobs meanwhile, so the wall times are of a shared 2-core machine. Resumable.
CODE=${CODE:-/work/wt_tfmot}
RUNS=${RUNS:-/work/main/runs/quickstart_r}
cd $CODE
while pgrep -f "results/tfmot_compare/commands.sh" > /dev/null; do sleep 20; done
for s in 0 1 2; do
  for what in nce train float; do
    dir=$RUNS/${what}_s$s
    [ -f $dir/metrics.json ] || [ -f $dir/train/metrics.json ] && continue
    case $what in
      nce) cmd="nce --flagfile=quickstart" ;;
      train) cmd="train --flagfile=quickstart" ;;
      float) cmd="train --flagfile=quickstart --w_bits=32 --a_bits=32" ;;
    esac
    nice -n 10 python -m nce_tf $cmd --seed=$s --workdir=$dir > $dir.log 2>&1
    echo "${what}_s$s rc=$? $(date -u +%FT%TZ)" >> $RUNS/queue.out
  done
done
[ -f $RUNS/nce_s0/export/model_card.json ] || nice -n 10 python -m nce_tf export --workdir=$RUNS/nce_s0 > $RUNS/export.log 2>&1
# Then, from /work/main: the records and the export's card, and the README's generated tables.
#   nce-tf results collect runs/quickstart_r/{nce,train,float}_s[0-2] --out=results/quickstart.jsonl
#   mkdir -p results/export_quickstart && cp runs/quickstart_r/nce_s0/export/model_card.json results/export_quickstart/
#   nce-tf results readme
