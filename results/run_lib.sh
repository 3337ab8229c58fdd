# Shared by the measurements' commands.sh (sourced, not run): their common options, the frozen worktree they
# run in, and the workers that take their jobs two (or N) at a time, each job claimed under a lock so that no
# job runs twice at once. A script sets MAIN, CODE and COMMIT, sources this file, reads its arguments with
# common_option (its own ones beside), defines job_list (prints the job names in order) and run_job NAME,
# then calls run_workers LOCK_DIR.

JOBS=1
SEEDS="0 1 2 3 4 5 6 7"

# common_option ARG: sets JOBS (--jobs=N, 1..8) or SEEDS (--seeds=S,S,...); status 1 for any other argument.
common_option() {
  case $1 in
    --jobs=[1-8]) JOBS=${1#--jobs=} ;;
    --seeds=*) SEEDS=$(echo "${1#--seeds=}" | tr ',' ' ') ;;
    *) return 1 ;;
  esac
}

# only_common_options ARGS...: every argument a common option (exit 2 on any other), the seeds checked.
only_common_options() {
  local arg
  for arg in "$@"; do
    common_option "$arg" || { echo "error: unknown argument $arg; allowed: --jobs=N (1..8), --seeds=S,S,..."; exit 2; }
  done
  check_seeds
}

# restore_r8_networks: the 8 ResNet-8 network pairs (seed 0 the study's) back into MAIN/runs/r8 from the
# state/ folders that keep them (archive_runs.py: never over an existing file).
restore_r8_networks() {
  (cd "$MAIN" && python results/archive_runs.py restore results/study_r8_w2a2_from_trained/state/r8 runs/r8 \
    && python results/archive_runs.py restore results/premise_near_1x/state runs/r8)
}

# check_seeds: every seed one of the 8 network pairs, or exit 2.
check_seeds() {
  local s
  for s in $SEEDS; do
    case $s in [0-7]) ;; *) echo "error: invalid seed $s; allowed: 0..7 (the network pairs)"; exit 2 ;; esac
  done
}

# frozen_worktree: CODE checked out at COMMIT (made if missing, its runs/ linked to MAIN's), or exit 2.
frozen_worktree() {
  if [ ! -d "$CODE" ]; then
    (cd "$MAIN" && git worktree prune && git worktree add --detach "$CODE" "$COMMIT" && ln -s "$MAIN/runs" "$CODE/runs") \
      || { echo "error: no worktree $CODE"; exit 2; }
  fi
  case "$(git -C "$CODE" rev-parse HEAD 2>/dev/null)" in "$COMMIT"*) ;; *) echo "error: $CODE is not at $COMMIT"; exit 2 ;; esac
}

_worker() {
  local name fd
  for name in $(job_list); do
    exec {fd}> "$1/.$name.lock"
    if flock -n $fd; then run_job "$name"; fi  # a job another worker holds is finished there
    exec {fd}>&-
  done
}

# run_workers LOCK_DIR: JOBS workers over job_list; status 1 if any worker failed.
run_workers() {
  local pids=() p j status=0
  for j in $(seq "$JOBS"); do _worker "$1" & pids+=($!); sleep 5; done
  for p in "${pids[@]}"; do wait "$p" || status=1; done
  return $status
}

# probe_subset_networks OUT [FLAGS...]: `nce-tf analyze sensitivity` (FLAGS added) of the subset table's W32A32 and
# W2A2 float-init networks, seeds 0-2 (restored from its state/), into runs/OUT, in CODE; each finished probe is
# kept in HERE/probes (and a rerun starts from those), the comparison in HERE.
probe_subset_networks() {
  local out=runs/$1 nets=runs/cifar_subset_v2
  shift
  (cd "$MAIN" && python results/archive_runs.py restore results/cifar_subset/state runs/cifar_subset_v2 \
    && mkdir -p $out/probes && { [ ! -d "$HERE/probes" ] || cp -n "$HERE"/probes/*.json $out/probes/ 2>/dev/null || true; })
  cd "$CODE"
  nice -n 15 python -m nce_tf analyze sensitivity --out=$out "$@" \
    --runs=$nets/w32a32_s0,$nets/w32a32_s1,$nets/w32a32_s2,$nets/w2a2_float_init_s0,$nets/w2a2_float_init_s1,$nets/w2a2_float_init_s2
  mkdir -p "$HERE/probes"
  cp $out/probes/*.json "$HERE/probes/"
  cp $out/sensitivity.json $out/sensitivity.md "$HERE/"
  [ ! -f $out/sensitivity.png ] || cp $out/sensitivity.png "$HERE/"
}
