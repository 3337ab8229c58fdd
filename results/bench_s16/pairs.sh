#!/usr/bin/env bash
# bench, session 16: before (c463293, before issues 25 and 27) vs after (AFTER, a worktree frozen at the commit
# this sitting benches), `nce-tf bench search --json` in BAAB order twice (4 runs each, each its own process;
# nothing else runs meanwhile), then `nce-tf bench mixed --json` once at AFTER. The records name their commit.
# Usage: AFTER_COMMIT=<commit> bash results/bench_s16/pairs.sh
set -e
MAIN=/work/main
HERE=$MAIN/results/bench_s16
BEFORE=/work/wt_before
AFTER=/work/wt_after
: "${AFTER_COMMIT:?set AFTER_COMMIT}"
[ -d $BEFORE ] || git -C $MAIN worktree add --detach $BEFORE c463293
[ -d $AFTER ] || git -C $MAIN worktree add --detach $AFTER "$AFTER_COMMIT"
case "$(git -C $AFTER rev-parse HEAD)" in "$AFTER_COMMIT"*) ;; *) echo "error: $AFTER is not at $AFTER_COMMIT"; exit 2 ;; esac
echo "start $(date -u +%FT%TZ) before=c463293 after=$AFTER_COMMIT" >> $HERE/sitting.log
one() {  # $1 = before|after
  local p=$BEFORE; [ $1 = after ] && p=$AFTER
  (cd /tmp && PYTHONPATH=$p python -m nce_tf bench search --json) >> $HERE/$1.jsonl 2>> $HERE/pairs.err
  echo "$1 $(date -u +%FT%TZ)" >> $HERE/sitting.log
}
for i in 1 2; do one before; one after; one after; one before; done
(cd /tmp && PYTHONPATH=$AFTER python -m nce_tf bench mixed --json) > $HERE/mixed.json 2>> $HERE/pairs.err
echo "done $(date -u +%FT%TZ)" >> $HERE/sitting.log
