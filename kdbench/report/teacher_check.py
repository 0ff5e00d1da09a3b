"""Is the teacher worth distilling? A teacher no better than a student trained alone can only pull it down.

The first published BreastMNIST run had exactly this: a 0.827 teacher and a 0.840 student
trained from scratch, so every "method" was measured against a handicap. kdbench says so
in the table footnote and in the terminal, wherever it happens.
"""

from __future__ import annotations

import pandas as pd

#: Compared at the full training set: the teacher always sees all of it.
METRICS = ("accuracy", "auc")


def weak_teachers(rows: list[dict]) -> list[str]:
    """One sentence per (dataset, teacher, student) whose scratch student matches or beats the teacher.

    Means over seeds of the successful predictive rows; the scratch students at fraction 1.
    """
    df = pd.DataFrame([r for r in rows if r.get("status") == "ok" and r.get("kind", "predictive") == "predictive"
                       and r.get("method") in ("teacher", "scratch")])
    if df.empty or not {"teacher", "scratch"} <= set(df["method"]):
        return []
    for m in METRICS:
        df[m] = pd.to_numeric(df.get(m), errors="coerce")
    means = df[df["fraction"].astype(float) == 1.0].groupby(["dataset", "teacher", "method", "student"])[
        list(METRICS)].mean()
    out = []
    for (dataset, teacher, method, student), scratch in means.iterrows():
        if method != "scratch" or (dataset, teacher, "teacher", teacher) not in means.index:
            continue
        ref = means.loc[(dataset, teacher, "teacher", teacher)]
        worse = [f"{m} {ref[m]:.3f} vs {scratch[m]:.3f}" for m in METRICS
                 if pd.notna(ref[m]) and pd.notna(scratch[m]) and ref[m] <= scratch[m]]
        if worse:
            out.append(f"on {dataset} the teacher {teacher} is not better than {student} trained from scratch "
                       f"({'; '.join(worse)}, means over seeds): distilling it can only pull {student} toward "
                       f"a weaker model")
    return out


def teacher_report(rows: list[dict]) -> pd.DataFrame:
    """Per (dataset, teacher): its seed mean and std of accuracy and AUC, the best scratch student's
    means, the published references, and whether the teacher meets the MedMNIST+ line and beats
    every scratch student on both metrics (``meets_line``, ``beats_scratch``)."""
    from kdbench.report.references import references_for

    df = pd.DataFrame([r for r in rows if r.get("status") == "ok" and r.get("kind", "predictive") == "predictive"
                       and r.get("method") in ("teacher", "scratch")])
    out = []
    if df.empty or "teacher" not in set(df["method"]):
        return pd.DataFrame(out)
    for (dataset, teacher), group in df.groupby(["dataset", "teacher"]):
        t = group[group["method"] == "teacher"]
        scratch = group[(group["method"] == "scratch") & (group["fraction"].astype(float) == 1.0)]
        best = scratch.groupby("student")[list(METRICS)].mean().max() if not scratch.empty else None
        entry = {"dataset": dataset, "teacher": teacher, "seeds": int(t["seed"].nunique())}
        for m in METRICS:
            entry[f"{m}_mean"], entry[f"{m}_std"] = float(t[m].mean()), float(t[m].std(ddof=1)) if len(t) > 1 else 0.0
            entry[f"best_scratch_{m}"] = float(best[m]) if best is not None else float("nan")
        refs = references_for(dataset)
        for ref in refs:
            key = ref.source.replace(" ", "_").replace("+", "_plus").lower()
            entry[f"{key}_accuracy"], entry[f"{key}_auc"] = ref.accuracy, ref.auc
        plus = next((r for r in refs if r.source == "MedMNIST+"), None)
        entry["meets_line"] = None if plus is None else bool(
            entry["accuracy_mean"] >= plus.accuracy and entry["auc_mean"] >= plus.auc)
        entry["beats_scratch"] = None if best is None else bool(
            all(entry[f"{m}_mean"] > entry[f"best_scratch_{m}"] for m in METRICS))
        out.append(entry)
    return pd.DataFrame(out)
