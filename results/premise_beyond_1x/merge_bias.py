"""Post-hoc reads of the beyond-1X searches' logs (not planned measures; README "One step past n").

Per search: the CE gradient's gap between 1.125n and n in the search epoch right after the expansion
(when the new channels start at exactly zero output), over the gap between n and 0.875n in the epoch
before it (mean over rows, each gap narrower minus wider); and in how many row-epochs the widest live
candidate got the most negative CE gradient. Run from the repository's root:

    python results/premise_beyond_1x/merge_bias.py
"""

import glob
import json
import os
import statistics

HERE = os.path.dirname(os.path.abspath(__file__))


def read(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def main():
    for bits in (2, 32):
        ratios, widest, total = [], 0, 0
        for path in sorted(glob.glob(os.path.join(HERE, "searches", f"b1x_w{bits}a{bits}_s*", "search_log.jsonl"))):
            search = [r for r in read(path) if r["phase"] == "search"]
            before = statistics.fmean(g[0] - g[1] for g in search[0]["alpha_grad_ce"])
            after = statistics.fmean(g[1] - g[2] for g in search[1]["alpha_grad_ce"])
            ratios.append(after / before)
            for record in search:
                for g in record["alpha_grad_ce"]:
                    total += 1
                    widest += min(range(len(g)), key=g.__getitem__) == len(g) - 1
        print(f"W{bits}A{bits}: gap after the expansion / gap before, per search "
              f"{', '.join(f'{r:.2f}' for r in ratios)}; mean {statistics.fmean(ratios):.2f}; "
              f"widest candidate's CE gradient the most negative in {widest} of {total} row-epochs")


if __name__ == "__main__":
    main()
