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
