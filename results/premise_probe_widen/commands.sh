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
probe_subset_networks probe_widen --probe_epochs=3 --probe_lr=0.05 --probe_ratios=1.25,1.5
