"""A machine-readable summary per benchmark, in the spirit of mmrazor's metafile.

``summary.json`` lists, for each teacher/student/method/fraction: the configuration, the
aggregated metrics (mean, std, n) and the checkpoint of each seed in the artifact store.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from kdbench.config.record import RECORDED, non_default_settings
from kdbench.report.leaderboard import Table, distinct_values


def build_summary(rows: list[dict], tables: list[Table], benchmark: str) -> dict:
    by_name = {t.name: t for t in tables}
    entries = []
    pred = by_name.get("predictive")
    ok = [r for r in rows if r.get("status") == "ok" and r.get("kind", "predictive") == "predictive"]
    if pred is not None:
        for _, agg in pred.frame.iterrows():
            key = (agg["dataset"], agg["teacher"], agg["student"], agg["method"], agg["fraction"])
            members = [r for r in ok if (r["dataset"], r["teacher"], r["student"], r["method"], r["fraction"]) == key]
            first = members[0] if members else {}
            metrics = {m: {"mean": _num(agg.get(f"{m}_mean")), "std": _num(agg.get(f"{m}_std"))}
                       for m in pred.specs if f"{m}_mean" in agg}
            entries.append({
                "dataset": key[0], "teacher": key[1], "student": key[2], "method": key[3], "fraction": key[4],
                "config": {"epochs": first.get("epochs"), "method_options": first.get("method_options") or {},
                           **{k: first[k] for k in RECORDED if k in first and k != "epochs"},
                           "dataset_options": first.get("dataset_options") or {}, "device": first.get("device")},
                "seeds": sorted(r["seed"] for r in members), "metrics": metrics, "n": int(agg["n"]),
                "checkpoints": {str(r["seed"]): r.get("checkpoint") for r in members},
                "config_hashes": sorted({r["config_hash"] for r in members}),
            })
    # every version the finished rows ran with ("2.14.1 and 2.15.0" after an upgrade mid-benchmark), as the footnote
    finished = [r for r in rows if r.get("status") == "ok"]
    keys = dict.fromkeys(k for r in finished for k in r if k.endswith("_version"))  # first seen first
    return {"benchmark": benchmark,
            "non_default_settings": non_default_settings(rows),
            "versions": {k: distinct_values(finished, k) for k in keys},
            "models": entries}


def write_summary(rows: list[dict], tables: list[Table], out_dir: Path, benchmark: str) -> Path:
    path = out_dir / "summary.json"
    path.write_text(json.dumps(build_summary(rows, tables, benchmark), indent=1), encoding="utf-8")
    return path


def _num(v):
    return None if v is None or pd.isna(v) else float(v)
