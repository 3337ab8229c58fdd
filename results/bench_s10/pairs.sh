#!/usr/bin/env bash
# bench, session 10: before (c463293, before issues 25 and 27) vs after (main HEAD), ABBA order (BAAB BAAB BAAB),
# 6 runs each, each its own process; the study queue's runner and trainings paused (SIGSTOP) meanwhile, so the
# sitting is idle apart from the bench. A block of four starts only while 25 minutes remain before DEADLINE.
OUT=/work/main/runs/bench10
DEADLINE=${DEADLINE:-$(date -d "11:08" +%s)}
HEAD=$(git -C /work/main rev-parse --short HEAD)
PIDS="$(pgrep -f 'nce_tf study' | tr '\n' ' ')$(pgrep -f 'nce_tf.plans.job' | tr '\n' ' ')$(pgrep -f 'commands.sh --jobs' | tr '\n' ' ')"
kill -STOP $PIDS; trap "kill -CONT $PIDS" EXIT
echo "paused $PIDS" >> $OUT/sitting.log
echo "start $(date -u +%FT%TZ) main=$HEAD" >> $OUT/sitting.log
one() {  # $1 = before|after
  if [ $1 = before ]; then P=/work/wt_before; else P=/work/main; fi
  (cd /tmp && PYTHONPATH=$P python -m nce_tf bench search --json) >> $OUT/$1.jsonl 2>>$OUT/pairs.err
  echo "$1 $(date -u +%FT%TZ) main=$(git -C /work/main rev-parse --short HEAD)" >> $OUT/sitting.log
}
for i in 1 2 3; do
  if [ $(( $(date +%s) + 1500 )) -gt $DEADLINE ]; then echo "block $i not started: deadline" >> $OUT/sitting.log; break; fi
  one before; one after; one after; one before
done
echo "done $(date -u +%FT%TZ)" >> $OUT/sitting.log
