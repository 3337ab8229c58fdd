#!/usr/bin/env bash
# bench, session 6: before (c463293) vs after (main HEAD), in ABBA order (BAAB BAAB BAAB), 6 runs each, the
# compress queue paused (SIGSTOP) meanwhile, so the sitting is idle apart from the bench.
OUT=/work/main/runs/bench
HEAD=$(git -C /work/main rev-parse --short HEAD)
PIDS="$(pgrep -f compress_cifar/queue3.sh) $(pgrep -f 'nce_tf compress')"
kill -STOP $PIDS; trap "kill -CONT $PIDS" EXIT
echo "paused $PIDS" >> $OUT/pairs4.out
echo "start $(date -u +%FT%TZ) main=$HEAD" >> $OUT/pairs4.out
one() {  # $1 = before|after
  if [ $1 = before ]; then P=/work/wt_before; else P=/work/main; fi
  (cd /tmp && PYTHONPATH=$P python -m nce_tf bench search --json) >> $OUT/${1}4.jsonl 2>>$OUT/pairs4.err
  echo "$1 $(date -u +%FT%TZ) main=$(git -C /work/main rev-parse --short HEAD)" >> $OUT/pairs4.out
}
for i in 1 2 3; do one before; one after; one after; one before; done
echo "done $(date -u +%FT%TZ)" >> $OUT/pairs4.out
