#!/usr/bin/env bash
# Issue 26's re-measured Fig. 3 study (flags/study/cifar_subset_resnet8_w2a2_from_trained.flags): ResNet-8 W2A2 on the
# CIFAR-10 subset, 8 structures per searched method (random, TAS, NCE; WRPN and the original as references), each
# trained twice from scratch; the searches start from a trained ResNet-8 W2A2 with the premise recipe.
# It takes longer than a session, and a session's machine (its runs/) does not outlive it: every finished run's
# records are kept in state/ (results/archive_runs.py), with the trained network the searches start from (its
# model.keras, so every session's searches start from the same weights; its SHA-256 is in each search's record).
# Every run at one commit, from a worktree frozen there (CODE; its runs/ linked to main's):
STUDY_COMMIT=866426b
#   git worktree add --detach /work/wt_run $STUDY_COMMIT && ln -s /work/main/runs /work/wt_run/runs
#   bash results/study_r8_w2a2_from_trained/commands.sh [--jobs=N]   # restore, continue, save (re-run to continue)
#   bash results/study_r8_w2a2_from_trained/commands.sh --save        # keep what finished (then commit state/)
#   bash results/study_r8_w2a2_from_trained/commands.sh --finalize    # when all 77 runs have finished
# (before --finalize, put the study-r8-from-trained and study-r8-from-trained-searches markers in the README's
# study section and mark the legacy study-r8 block as the earlier study; how the study will be read: plan.md)
set -e
MAIN=/work/main
CODE=${CODE:-/work/wt_run}
HERE=$MAIN/results/study_r8_w2a2_from_trained
study=runs/study_r8_w2a2_from_trained
save() { cd $MAIN && python results/archive_runs.py save $study $HERE/state/study; \
  python results/archive_runs.py save runs/r8 $HERE/state/r8 w32a32_s0 w2a2_s0; }
case "$1" in
  --save) save; exit 0;;
  --finalize)
    cd $MAIN
    cp $study/study.json $study/study.csv $study/summary.md $study/study.png $HERE/
    python -m nce_tf results collect runs/r8/w32a32_s0 runs/r8/w2a2_s0 --out=$HERE/trained.jsonl
    # the searches' diagnostics (what drove alpha), from their committed records: all 16 or none
    n=$(ls -d $HERE/state/study/runs/tas_s*/search $HERE/state/study/runs/nce_s*/search 2>/dev/null | wc -l)
    [ "$n" = 16 ] || { echo "error: $n of the 16 TAS and NCE searches in state/ (run --save first)"; exit 2; }
    (cd $MAIN && python -m nce_tf search-summary results/study_r8_w2a2_from_trained/state/study/runs/tas_s*/search \
      results/study_r8_w2a2_from_trained/state/study/runs/nce_s*/search \
      --json=results/study_r8_w2a2_from_trained/searches.json > /dev/null)
    python -m nce_tf results readme
    exit 0;;
esac
case "$(git -C $CODE rev-parse HEAD 2>/dev/null)" in $STUDY_COMMIT*) ;; *) echo "error: $CODE is not at $STUDY_COMMIT"; exit 2;; esac
cd $MAIN
[ -d $HERE/state/r8 ] && python results/archive_runs.py restore $HERE/state/r8 runs/r8
[ -d $HERE/state/study ] && python results/archive_runs.py restore $HERE/state/study $study
cd $CODE
# 1. the trained network the searches start from (kept in state/r8 once trained):
[ -f runs/r8/w32a32_s0/metrics.json ] || nice -n 15 python -m nce_tf train --flagfile=cifar_subset/w32a32 --model=resnet8 \
  --epochs=30 --seed=0 --workdir=runs/r8/w32a32_s0 > runs/r8_w32a32_s0.log 2>&1
[ -f runs/r8/w2a2_s0/metrics.json ] || nice -n 15 python -m nce_tf train --flagfile=cifar_subset/w2a2 --model=resnet8 \
  --epochs=15 --lr=0.01 --pact_init=stats --init_from=runs/r8/w32a32_s0 --seed=0 --workdir=runs/r8/w2a2_s0 \
  > runs/r8_w2a2_s0.log 2>&1
# 2. the study (resumable; a finished run never starts again):
nice -n 15 python -m nce_tf study --flagfile=study/cifar_subset_resnet8_w2a2_from_trained --init_from=runs/r8/w2a2_s0 \
  ${1:---jobs=1} --workdir=$study > runs/study_r8.out 2>&1 || true
save
