#!/usr/bin/env bash
# The long measurements still to finish, in order, for a session to start in one command (each measurement
# restores its finished runs from its state/ folder, so a machine that did not keep runs/ loses nothing):
#   1. issue 26's re-measured study (results/study_r8_w2a2_from_trained/commands.sh), 2 runs at a time;
#   2. then issue 26's re-measured subset table (results/cifar_subset/commands.sh), 2 at a time;
#   3. then issue 25's next link, planned in results/premise_near_1x/plan.md (its commands.sh), two seeds at a time;
#   4. then the link after it, results/premise_beyond_1x/plan.md (its commands.sh, own worktree), two searches at a time;
#   5. then both again with the zero-padded pair merge, results/premise_pad_merge/plan.md (own worktree), two at a time.
# (The two acceptance measurements go before the follow-up the team planned for itself.)
# All run at one frozen commit in the worktree CODE (made here if missing). Every 20 minutes the finished
# runs are saved into the state/ folders, ready to be committed:
#   git add results/study_r8_w2a2_from_trained/state results/premise_near_1x results/premise_beyond_1x \
#     results/premise_pad_merge results/cifar_subset/state && git commit
# Usage: nohup bash results/queue.sh > /dev/null 2>&1 &
# A sitting of step 1 already under way (a queue restarted by hand) is waited for, not doubled.
MAIN=/work/main
CODE=${CODE:-/work/wt_run}
COMMIT=866426b
cd $MAIN
# (from /tmp: in the checkout, python would find nce_tf on the working directory without its install)
(cd /tmp && python -c "import nce_tf, tensorflow") 2>/dev/null \
  || { echo "error: nce_tf or TensorFlow does not import; first: pip install -e \".[test]\""; exit 2; }
mkdir -p runs
# one queue at a time (the lock goes with its process)
exec 9> runs/.queue.lock
flock -n 9 || { echo "error: another results/queue.sh holds runs/.queue.lock"; exit 2; }
if [ ! -d $CODE ]; then
  git worktree prune
  git worktree add --detach $CODE $COMMIT && ln -s $MAIN/runs $CODE/runs || { echo "error: no worktree $CODE"; exit 2; }
fi
saver() {
  while sleep 1200; do
    bash results/study_r8_w2a2_from_trained/commands.sh --save > /dev/null 2>&1
    [ -d runs/cifar_subset_v2 ] && bash results/cifar_subset/commands.sh --save > /dev/null 2>&1
    # the near-1X searches' records are copied by their script as each finishes
  done
}
saver &
SAVER=$!
trap 'kill $SAVER' EXIT
while pgrep -f "study_r8_w2a2_from_trained/commands.sh --jobs" > /dev/null; do sleep 60; done
bash results/study_r8_w2a2_from_trained/commands.sh --jobs=2 >> runs/queue.out 2>&1
echo "study sitting ended $(date -u +%FT%TZ)" >> runs/queue.out
bash results/cifar_subset/commands.sh --jobs=2 >> runs/queue.out 2>&1
echo "subset table sitting ended $(date -u +%FT%TZ)" >> runs/queue.out
bash results/premise_near_1x/commands.sh --jobs=2 >> runs/queue.out 2>&1
echo "premise near-1X sitting ended $(date -u +%FT%TZ)" >> runs/queue.out
bash results/premise_beyond_1x/commands.sh --jobs=2 >> runs/queue.out 2>&1
echo "premise beyond-1X sitting ended $(date -u +%FT%TZ)" >> runs/queue.out
bash results/premise_pad_merge/commands.sh --jobs=2 >> runs/queue.out 2>&1
echo "premise pad-merge sitting ended $(date -u +%FT%TZ)" >> runs/queue.out
