"""Rendering leaderboard tables: terminal (rich), Markdown, LaTeX, HTML, CSV and JSON.

Every format comes from the same :class:`kdbench.report.leaderboard.Table` frames. Markdown,
LaTeX and HTML mark the best value of each ranked column in bold (per dataset and
teacher, among the students) and carry the table's footnote.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from kdbench.report.leaderboard import Table

FORMATS = ("md", "latex", "html", "csv", "json")
SHORT = {"accuracy": "acc", "gain_accuracy": "Δacc", "gain_auc": "Δauc", "gain_f1": "Δf1", "latency_ms": "ms",
         "fraction": "frac", "faithfulness_correlation": "faith", "pixel_flipping": "pixflip",
         "max_sensitivity": "maxsens", "sparseness": "sparse", "complexity": "complex", "pointing_game": "pointing",
         "attribution_localisation": "attrloc", "topk_intersection": "topk", "relevance_rank_accuracy": "rrank",
         "explain_ms_per_image": "ms/img", "avg_rank": "rank"}


def human(value: float) -> str:
    """1234567 -> 1.23M: sizes and FLOPs read at a glance."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.0f}"


def fmt(mean, std, n: int, digits: int, signed: bool = False) -> str:
    if pd.isna(mean):
        return "–"
    if digits == 0:
        return human(mean)
    text = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    if n > 1 and not pd.isna(std):
        text += f" ± {std:.{digits}f}"
    return text


def cells(table: Table, bold=None) -> tuple[list[str], list[list[str]]]:
    """Header and string cells; ``bold(text)`` marks the best student per (dataset, teacher, fraction)."""
    f = table.frame
    headers = list(table.ids) + [f"{m} {table.specs[m].arrow}" for m in table.metrics] + ["avg_rank ↓"]
    best = {}
    students = f[f["method"] != "teacher"]
    for m in table.metrics:
        col = f"{m}_mean"
        if bold and table.specs[m].ranked and students[col].notna().any():
            best[m] = students.groupby(["dataset", "teacher", "fraction"], dropna=False)[col].agg(
                "max" if table.specs[m].higher_is_better else "min")
    rows = []
    for _, r in f.iterrows():
        n = int(r["n"]) if not pd.isna(r["n"]) else 1
        row = []
        for k in table.ids:
            v = r[k]
            row.append(f"{v:g}" if k == "fraction" and not pd.isna(v) else str(n) if k == "n" else str(v))
        for m in table.metrics:
            spec = table.specs[m]
            text = fmt(r[f"{m}_mean"], r[f"{m}_std"], n, spec.digits, signed=m.startswith("gain_"))
            if m in best and r["method"] != "teacher" and \
                    r[f"{m}_mean"] == best[m].get((r["dataset"], r["teacher"], r["fraction"])):
                text = bold(text)
            row.append(text)
        row.append("–" if pd.isna(r.get("avg_rank")) else f"{r['avg_rank']:.1f}")
        rows.append(row)
    return headers, rows


# -- Markdown ---------------------------------------------------------------------------
def to_markdown(tables: list[Table]) -> str:
    if not tables:
        return "No successful results yet.\n"
    parts = []
    for t in tables:
        headers, rows = cells(t, bold=lambda s: f"**{s}**")
        parts.append(f"## {t.title}\n\n{tabulate(rows, headers=headers, tablefmt='github')}\n\n{t.footnote}\n")
    return "\n".join(parts)


# -- LaTeX ------------------------------------------------------------------------------
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_SYMBOLS = {"±": r"$\pm$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "–": "--", "Δ": r"$\Delta$",
                  "·": r"$\cdot$", "‖": r"$\|$"}


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(c, c) for c in str(text))
    for sym, tex in _LATEX_SYMBOLS.items():
        out = out.replace(sym, tex)
    return out


def to_latex(tables: list[Table]) -> str:
    """booktabs tables (``\\usepackage{booktabs}``), one ``table`` float each."""
    parts = ["% kdbench leaderboard; needs \\usepackage{booktabs}"]
    for t in tables:
        headers, rows = cells(t, bold=lambda s: f"\x00{s}\x01")
        body = pd.DataFrame([[_bold_tex(latex_escape(c)) for c in r] for r in rows],
                            columns=[latex_escape(h) for h in headers])
        tex = body.style.hide(axis="index").to_latex(
            hrules=True, environment="table", position="t", position_float="centering",
            caption=latex_escape(t.title), column_format="l" * len(t.ids) + "r" * (len(headers) - len(t.ids)))
        tex = tex.replace("\\end{table}", f"\\par\\footnotesize {latex_escape(t.footnote)}\n\\end{{table}}")
        parts.append(tex)
    return "\n".join(parts)


def _bold_tex(text: str) -> str:
    return re.sub("\x00(.*?)\x01", r"\\textbf{\1}", text)


# -- HTML -------------------------------------------------------------------------------
def to_html(tables: list[Table]) -> str:
    body = []
    for t in tables:
        headers, rows = cells(t, bold=lambda s: f"\x00{s}\x01")
        frame = pd.DataFrame([[html.escape(c).replace("\x00", "<strong>").replace("\x01", "</strong>") for c in r]
                              for r in rows], columns=[html.escape(h) for h in headers])
        body.append(f"<h2>{html.escape(t.title)}</h2>\n"
                    f"{frame.to_html(index=False, escape=False, border=0, classes='kdbench')}\n"
                    f"<p class=\"footnote\">{html.escape(t.footnote)}</p>")
    style = ("table.kdbench{border-collapse:collapse;font:13px sans-serif}"
             "table.kdbench td,table.kdbench th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}"
             ".footnote{font:12px sans-serif;color:#555;max-width:60em}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>kdbench leaderboard</title>"
            f"<style>{style}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


# -- CSV / JSON -------------------------------------------------------------------------
def to_json(tables: list[Table], conflicts: list[str]) -> str:
    doc = {"tables": {t.name: {"title": t.title, "footnote": t.footnote, "metrics": t.metrics,
                               "directions": {m: "higher" if t.specs[m].higher_is_better else "lower"
                                              for m in t.metrics},
                               "rows": json.loads(t.frame.to_json(orient="records"))} for t in tables},
           "conflicts": conflicts}
    return json.dumps(doc, indent=1, ensure_ascii=False)


# -- terminal ---------------------------------------------------------------------------
def rich_tables(tables: list[Table]) -> list:
    """One rich table per table and (dataset, teacher), so every column stays readable."""
    from rich.table import Table as RichTable

    out = []
    for t in tables:
        for (dataset, teacher), part in t.frame.groupby(["dataset", "teacher"], sort=False):
            sub = Table(t.name, t.title, part, t.ids, t.metrics, t.specs)
            headers, rows = cells(sub, bold=lambda s: f"[bold green]{s}[/]")
            keep = [i for i, h in enumerate(headers) if h not in ("dataset", "teacher", "n")]
            table = RichTable(title=f"{t.title} · {dataset} · teacher {teacher}", title_justify="left")
            for i in keep:
                name, _, arrow = headers[i].partition(" ")
                table.add_column(f"{SHORT.get(name, name)} {arrow}".strip(),
                                 justify="left" if i < len(t.ids) else "right")
            for r in rows:
                table.add_row(*[r[i] for i in keep])
            out.append(table)
        out.append(t.footnote)
    return out or ["no successful results yet"]


def write_tables(tables: list[Table], conflicts: list[str], out_dir: Path, formats=FORMATS) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        from kdbench.errors import ConfigError

        raise ConfigError(f"unknown format {unknown[0]!r} (formats: {', '.join(FORMATS)})")
    if "md" in formats:
        written.append(_write(out_dir / "leaderboard.md", to_markdown(tables)))
    if "latex" in formats:
        written.append(_write(out_dir / "leaderboard.tex", to_latex(tables)))
    if "html" in formats:
        written.append(_write(out_dir / "leaderboard.html", to_html(tables)))
    if "csv" in formats:
        for t in tables:
            path = out_dir / f"leaderboard_{t.name}.csv"
            t.frame.to_csv(path, index=False)
            written.append(path)
    if "json" in formats:
        written.append(_write(out_dir / "leaderboard.json", to_json(tables, conflicts)))
    return written


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
