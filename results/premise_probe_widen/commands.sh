#!/usr/bin/env bash
# The probes of plan.md: the live probe (results/premise_probe_live/) of the same six networks again at the known
# answer's fine-tuning strength (3 epochs at lr 0.05), widening only, at one frozen commit (CODE, runs/ linked to
# main's). Resumable: each network's probe is written to probes/ when done and kept here; a rerun probes
# only the missing ones. Usage: bash results/premise_probe_widen/commands.sh
set -e
MAIN=/work/main
CODE=${CODE:-/work/wt_live}
COMMIT=${COMMIT:-b666af6}
HERE=$MAIN/results/premise_probe_widen
source $MAIN/results/run_lib.sh
only_common_options "$@"
frozen_worktree
cd $MAIN
python results/archive_runs.py restore results/cifar_subset/state runs/cifar_subset_v2
mkdir -p runs/probe_widen/probes
[ -d $HERE/probes ] && cp -n $HERE/probes/*.json runs/probe_widen/probes/ 2>/dev/null || true
cd $CODE
nets=runs/cifar_subset_v2
nice -n 15 python -m nce_tf analyze sensitivity --out=runs/probe_widen --probe_epochs=3 --probe_lr=0.05 --probe_ratios=1.25,1.5 \
  --runs=$nets/w32a32_s0,$nets/w32a32_s1,$nets/w32a32_s2,$nets/w2a2_float_init_s0,$nets/w2a2_float_init_s1,$nets/w2a2_float_init_s2
mkdir -p $HERE/probes
cp runs/probe_widen/probes/*.json $HERE/probes/
cp runs/probe_widen/sensitivity.json runs/probe_widen/sensitivity.md $HERE/
[ ! -f runs/probe_widen/sensitivity.png ] || cp runs/probe_widen/sensitivity.png $HERE/
