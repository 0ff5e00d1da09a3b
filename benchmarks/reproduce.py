"""Compare a fresh run of a benchmark with its published results.

The published claim of results/<benchmark>/ is "run the command again from scratch and you
get the same numbers within the seed spread". This script checks it: it pairs the two runs'
jobs by config hash (same dataset, models, method, options, seed and fraction), reports how
many scores came out bit-identical, and, per model (student, method, fraction), whether the
fresh seed mean lies within the published seed standard deviation of the published mean.

    kdbench run --config benchmarks/breastmnist.toml --out /tmp/fresh --cache-dir /tmp/fresh-cache
    python benchmarks/reproduce.py results/breastmnist /tmp/fresh

Exit status 0 when every model is within the spread, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from kdbench.run.results import latest_rows, read_rows

PREDICTIVE = ["accuracy", "auc", "f1"]
EXPLANATION = ["faithfulness_correlation", "pixel_flipping", "sparseness", "complexity", "max_sensitivity"]
MODEL = ["student", "method", "fraction"]


def ok_rows(folder: Path) -> pd.DataFrame:
    rows, _ = read_rows(folder / "runs.jsonl")
    frame = pd.DataFrame([r for r in latest_rows(rows) if r.get("status") == "ok"])
    if frame.empty:
        raise SystemExit(f"{folder}/runs.jsonl has no finished jobs: run the benchmark first")
    frame["explainer"] = frame["explainer"].fillna("")
    return frame


def paired(published: pd.DataFrame, fresh: pd.DataFrame, kind: str, metrics: list[str]) -> pd.DataFrame:
    keys = ["config_hash", "explainer"]
    cols = keys + MODEL + ["seed"] + [m for m in metrics if m in published]
    a = published[published["kind"] == kind][cols]
    b = fresh[fresh["kind"] == kind][[c for c in cols if c in fresh]]
    return a.merge(b, on=keys + MODEL + ["seed"], suffixes=("_published", "_fresh"))


def identical_counts(pairs: pd.DataFrame, metrics: list[str]) -> list[str]:
    lines = []
    for m in metrics:
        a, b = pairs.get(f"{m}_published"), pairs.get(f"{m}_fresh")
        if a is None or b is None:
            continue
        both = a.notna() & b.notna()
        if both.any():
            same = int((a[both] == b[both]).sum())
            lines.append(f"{m}: {same}/{int(both.sum())} scores identical, "
                         f"largest difference {float((a[both] - b[both]).abs().max()):.4f}")
    return lines


def spread_check(pairs: pd.DataFrame, metric: str, group: list[str]) -> pd.DataFrame:
    """Per model: published mean ± std (over seeds) and the fresh mean; within when |Δ| <= std."""
    grouped = pairs.groupby(group, dropna=False)
    out = pd.DataFrame({
        "published_mean": grouped[f"{metric}_published"].mean(),
        "published_std": grouped[f"{metric}_published"].std(ddof=1).fillna(0.0),
        "fresh_mean": grouped[f"{metric}_fresh"].mean(),
        "seeds": grouped["seed"].nunique(),
    }).reset_index()
    out["delta"] = out["fresh_mean"] - out["published_mean"]
    out["within_spread"] = out["delta"].abs() <= out["published_std"] + 1e-9
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("published", type=Path, help="published results folder (holds runs.jsonl)")
    parser.add_argument("fresh", type=Path, help="results folder of the fresh run")
    parser.add_argument("--metric", default="accuracy", help="metric whose seed spread is checked")
    args = parser.parse_args(argv)

    published, fresh = ok_rows(args.published), ok_rows(args.fresh)
    pred = paired(published, fresh, "predictive", PREDICTIVE)
    expl = paired(published, fresh, "explanation", EXPLANATION)
    print(f"{len(pred)} predictive and {len(expl)} explanation rows paired by config hash")
    for line in identical_counts(pred, PREDICTIVE) + identical_counts(expl, EXPLANATION):
        print("  " + line)

    check = spread_check(pred, args.metric, MODEL)
    print()
    print(check.to_markdown(index=False, floatfmt=".3f"))
    outside = check[~check["within_spread"]]
    print()
    print(f"{len(check) - len(outside)}/{len(check)} models within the published seed spread of {args.metric}")
    return 0 if outside.empty else 1


if __name__ == "__main__":
    sys.exit(main())
