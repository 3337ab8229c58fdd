#!/usr/bin/env bash
# nce-tf's W2A2 QAT against tfmot's (issue 26, item 5: the tfmot comparison re-measured), seeds 0-6 (five first, then two more: at n = 5 pairs the sign-flip test cannot go below 0.0625), each
# `nce-tf bench tfmot --json` one line of runs.jsonl. Ran from a worktree frozen at the commit in each line's
# provenance; tfmot in its own venv (/work/venv_tfmot: --system-site-packages, plus tf-keras 2.21.0 and
# tensorflow-model-optimization 0.8.1). The machine ran two other niced jobs meanwhile (step times are noisy).
CODE=${CODE:-/work/wt_tfmot}
OUT=${OUT:-/work/main/results/tfmot_compare/runs.jsonl}
cd $CODE
for s in 0 1 2 3 4 5 6; do
  grep -q "\"seed\": $s," $OUT 2>/dev/null && continue
  nice -n 10 python -m nce_tf bench tfmot --json --seed=$s --tfmot_python=/work/venv_tfmot/bin/python >> $OUT \
    2>> ${OUT%.jsonl}.log
done
