"""Before / after bench runs of one sitting compared: per-run ratios, exact permutation test, Welch interval,
smallest detectable difference (nce_tf.stats.compare).

    python results/bench_s6/compare.py [DIR] [--exclude=after:0,after:1,before:1]

``--exclude`` leaves out runs by side and index (0-based, in file order); the result goes to compare.json,
or compare_excluding.json with exclusions."""

import json
import os
import sys

from nce_tf import stats

args = [a for a in sys.argv[1:] if not a.startswith("--exclude=")]
excluded = {tuple(item.split(":")) for a in sys.argv[1:] if a.startswith("--exclude=")
            for item in a.split("=", 1)[1].split(",")}
here = args[0] if args else os.path.dirname(os.path.abspath(__file__))
runs = {side: [json.loads(line) for i, line in enumerate(open(os.path.join(here, f"{side}.jsonl")))
               if line.strip() and (side, str(i)) not in excluded] for side in ("before", "after")}
out = {"excluded": sorted(":".join(e) for e in excluded)}
for key in ("ratio_k8", "ratio_k16", "search_step_s_k8", "plain_step_s_k8", "search_step_s_k16", "plain_step_s_k16"):
    after, before = [r[key] for r in runs["after"]], [r[key] for r in runs["before"]]
    c = stats.compare(after, before)
    out[key] = {"before": before, "after": after, **{k: c[k] for k in ("difference", "low", "high", "p", "p_min",
                                                                       "mdd", "resolved")}}
    print(f"{key}: before {', '.join(f'{v:.3f}' for v in before)}; after {', '.join(f'{v:.3f}' for v in after)}; "
          f"after - before {c['difference']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}] (Welch 95%), permutation "
          f"p {c['p']:.3g} (p_min {c['p_min']:.2g}), detectable at 80% {c['mdd']:.3f}")
with open(os.path.join(here, "compare_excluding.json" if excluded else "compare.json"), "w") as f:
    json.dump(out, f, indent=1)
