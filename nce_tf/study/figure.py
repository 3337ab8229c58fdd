"""The study's figure in the style of the paper's Fig. 3: test accuracy per method.

Each structure is a point at the mean of its trainings, with a bar from its lowest to its
highest training (three trainings in the paper); points of one method are spread sideways in
order of search seed; a horizontal line marks the method's mean over structures.
"""

import statistics

from nce_tf.analysis import plots
from nce_tf.results.study_summary import by_structure


def plot(study_rows, methods, path):
    present = [m for m in methods if any(r["method"] == m for r in study_rows)]
    fig, ax = plots.figure(width=2.6 + 1.3 * len(present), height=4.0)
    for x, method in enumerate(present):
        structs = by_structure(study_rows, method)
        n = len(structs)
        means = []
        for i, accs in enumerate(structs.values()):
            offset = 0.0 if n == 1 else -0.3 + 0.6 * i / (n - 1)
            mean = 100 * statistics.fmean(accs)
            means.append(mean)
            ax.errorbar([x + offset], [mean], yerr=[[mean - 100 * min(accs)], [100 * max(accs) - mean]],
                        fmt="o", color=f"C{x}", markersize=4, capsize=2, linewidth=1)
        ax.hlines(statistics.fmean(means), x - 0.38, x + 0.38, colors=f"C{x}", linewidth=2)
    ax.set_xticks(range(len(present)), present)
    ax.set_xlim(-0.6, len(present) - 0.4)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("a point per structure: mean of its trainings, bar from lowest to highest;\n"
                 "line: the method's mean over structures", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    plots.save(fig, path)
