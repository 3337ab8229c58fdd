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
probe_subset_networks probe_live
