"""The teachers of the published benchmarks beside the field's baselines (MedMNIST v2, MedMNIST+).

Prints one Markdown table from results/*/runs.jsonl: each teacher's test accuracy and AUC
(mean ± std over seeds), the best student trained from scratch on the full training set,
the published ResNet-18 (28 px) numbers, and whether the teacher meets the MedMNIST+ line
and beats every scratch student. results/README.md quotes it.

    python benchmarks/teachers.py [results/breastmnist results/pneumoniamnist ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from tabulate import tabulate

from kdbench.report.teacher_check import teacher_report
from kdbench.run.results import latest_rows, read_rows


def _yes_no(value) -> str:
    return "–" if value is None or value != value else "yes" if value else "no"


def _mean_std(mean, std, seeds) -> str:
    """``mean ± std`` over seeds; one seed has no spread to show."""
    return f"{mean:.3f} ± {std:.3f}" if seeds > 1 else f"{mean:.3f}"


def main(argv=None) -> int:
    folders = [Path(a) for a in (argv or [])] or sorted(Path(__file__).resolve().parents[1].glob("results/*/"))
    lines, ok = [], True
    for folder in folders:
        if not (folder / "runs.jsonl").is_file():
            continue
        rows, _ = read_rows(folder / "runs.jsonl")
        for _, t in teacher_report(latest_rows(rows)).iterrows():
            ok &= bool(t["meets_line"]) and bool(t["beats_scratch"])
            lines.append([t["dataset"], t["teacher"], t["seeds"],
                          _mean_std(t["accuracy_mean"], t["accuracy_std"], t["seeds"]),
                          _mean_std(t["auc_mean"], t["auc_std"], t["seeds"]),
                          f"{t['best_scratch_accuracy']:.3f} / {t['best_scratch_auc']:.3f}",
                          f"{t.get('medmnist_v2_accuracy', float('nan')):.3f} / {t.get('medmnist_v2_auc', float('nan')):.3f}",
                          f"{t.get('medmnist_plus_accuracy', float('nan')):.3f} / {t.get('medmnist_plus_auc', float('nan')):.3f}",
                          _yes_no(t["meets_line"]), _yes_no(t["beats_scratch"])])
    print(tabulate(lines, headers=["dataset", "teacher", "seeds", "accuracy", "AUC", "best scratch acc. / AUC",
                                   "MedMNIST v2 acc. / AUC", "MedMNIST+ acc. / AUC", "meets MedMNIST+",
                                   "beats scratch"], tablefmt="pipe", disable_numparse=True))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
