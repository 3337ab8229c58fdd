#!/usr/bin/env bash
# bench pairs, session 4 (issue 27's acceptance): before (c463293) and after (main at the time), alternating,
# then nce-tf bench mixed once (issue 29). Waits for the Fig. 4c searches.
while pgrep -f runs/fig4c/queue.sh > /dev/null || pgrep -f runs/gt/queue3.sh > /dev/null; do sleep 30; done
echo "start $(date -u +%FT%TZ) main=$(git -C /work/main rev-parse --short HEAD)" >> /work/main/runs/bench/pairs3.out
for i in 1 2; do
  (cd /tmp && PYTHONPATH=/work/wt_before python -m nce_tf bench search --json) >> /work/main/runs/bench/before3.jsonl 2>/dev/null
  (cd /tmp && PYTHONPATH=/work/main python -m nce_tf bench search --json) >> /work/main/runs/bench/after3.jsonl 2>/dev/null
  echo "pair $i $(date -u +%FT%TZ) main=$(git -C /work/main rev-parse --short HEAD)" >> /work/main/runs/bench/pairs3.out
done
(cd /tmp && PYTHONPATH=/work/main python -m nce_tf bench mixed --json) > /work/main/runs/bench/mixed3.json 2>/dev/null
echo "done $(date -u +%FT%TZ)" >> /work/main/runs/bench/pairs3.out
