#!/usr/bin/env bash
# The probes of plan.md: the subset table's W32A32 and W2A2 float-init networks, seeds 0-2 (the start networks
# of its NCE searches), probed by `nce-tf analyze sensitivity` at one frozen commit (CODE, runs/ linked to
# main's). Resumable: each network's probe is written to probes/ when done and kept here; a rerun probes
# only the missing ones. Usage: bash results/premise_probe_live/commands.sh
set -e
MAIN=/work/main
CODE=${CODE:-/work/wt_live}
COMMIT=${COMMIT:-b666af6}
HERE=$MAIN/results/premise_probe_live
source $MAIN/results/run_lib.sh
only_common_options "$@"
frozen_worktree
cd $MAIN
python results/archive_runs.py restore results/cifar_subset/state runs/cifar_subset_v2
mkdir -p runs/probe_live/probes
[ -d $HERE/probes ] && cp -n $HERE/probes/*.json runs/probe_live/probes/ 2>/dev/null || true
cd $CODE
nets=runs/cifar_subset_v2
nice -n 15 python -m nce_tf analyze sensitivity --out=runs/probe_live \
  --runs=$nets/w32a32_s0,$nets/w32a32_s1,$nets/w32a32_s2,$nets/w2a2_float_init_s0,$nets/w2a2_float_init_s1,$nets/w2a2_float_init_s2
mkdir -p $HERE/probes
cp runs/probe_live/probes/*.json $HERE/probes/
cp runs/probe_live/sensitivity.json runs/probe_live/sensitivity.md $HERE/
[ ! -f runs/probe_live/sensitivity.png ] || cp runs/probe_live/sensitivity.png $HERE/
