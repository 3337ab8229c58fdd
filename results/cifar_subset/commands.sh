#!/usr/bin/env bash
# Issue 26's re-measured ResNet-20 subset table (nce-tf cifar-subset-table: 7 rows x 3 seeds; NCE and TAS
# widths searched from the W2A2 float-init network of their seed). Longer than a session, and a session's
# machine (its runs/) does not outlive it: every finished run's records are kept in state/
# (results/archive_runs.py), with the networks later runs start from (W32A32 and W2A2 float-init: their
# model.keras, so every session's dependent runs start from the same weights; their SHA-256 is recorded).
# Every run at one commit, from a worktree frozen there (CODE; its runs/ linked to main's):
TABLE_COMMIT=${TABLE_COMMIT:-866426b}
#   git worktree add --detach /work/wt_run $TABLE_COMMIT && ln -s /work/main/runs /work/wt_run/runs
#   bash results/cifar_subset/commands.sh [--jobs=N]   # restore, continue, save (re-run to continue)
#   bash results/cifar_subset/commands.sh --save        # keep what finished (then commit state/)
#   bash results/cifar_subset/commands.sh --finalize    # the finished runs' records and README tables, from main
# (the README's cifar-subset tables fill in as runs finish; all 27 finished 2026-12-07; how the tables are read:
# plan.md)
set -e
MAIN=/work/main
CODE=${CODE:-/work/wt_run}
HERE=$MAIN/results/cifar_subset
out=runs/cifar_subset_v2
whole() { for s in 0 1 2; do echo w32a32_s$s w2a2_float_init_s$s; done; }
save() { cd $MAIN && python results/archive_runs.py save $out $HERE/state $(whole); }
case "$1" in
  --save) save; exit 0;;
  --finalize)
    # from main (its results/ and README), tabulating the finished runs without starting any; the finished
    # searches' summary (searches.json) for the cifar-subset-searches and cifar-subset-widths tables (their
    # README markers go in once it exists)
    cd $MAIN
    searches=$(cd $MAIN && ls -d results/cifar_subset/state/{nce,tas}_from_trained_s[0-9] 2>/dev/null || true)
    [ -z "$searches" ] || python -m nce_tf search-summary $searches --json=$HERE/searches.json > /dev/null
    python -m nce_tf cifar-subset-table --out=$out --finished_only --update_readme
    exit 0;;
esac
case "$(git -C $CODE rev-parse HEAD 2>/dev/null)" in $TABLE_COMMIT*) ;; *) echo "error: $CODE is not at $TABLE_COMMIT"; exit 2;; esac
cd $MAIN
[ -d $HERE/state ] && python results/archive_runs.py restore $HERE/state $out
cd $CODE
nice -n 15 python -m nce_tf cifar-subset-table --out=$out ${1:---jobs=1} > runs/cifar_subset_v2.out 2>&1 || true
save
