"""Rendering leaderboard tables: terminal (rich), Markdown, LaTeX, HTML, CSV and JSON.

Every format comes from the same :class:`kdbench.report.leaderboard.Table` frames. Markdown,
LaTeX and HTML mark the best value of each ranked column in bold (per dataset and
teacher, among the students) and carry the table's footnote. They share one presentation
(:func:`view`): headers from :data:`LABELS` with the metric's direction (``Acc. ↑``), and
id columns that are constant over the rows said once (caption or line above the table).

- LaTeX (:func:`latex_table`): fragments that fit :data:`TEXTWIDTH_PT` with booktabs and
  longtable only: one table per dataset, students and fractions as group rows, metric
  columns split into parts, a ``longtable`` past :data:`PAGE_ROWS` rows, a ``\\label`` per
  part; :func:`latex_standalone` wraps them in a document that compiles as-is.
- HTML (:func:`to_html`): text left, numbers right, no wrapping, sortable headers (inline
  script, nothing fetched) and the run's plots, by relative path.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from itertools import combinations
from math import comb
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from kdbench.report.leaderboard import Table

FORMATS = ("md", "latex", "html", "csv", "json")
SHORT = {"gain_accuracy_lo": "Δlo", "gain_accuracy_hi": "Δhi", "gain_auc_lo": "ΔAUClo", "gain_auc_hi": "ΔAUChi", "teacher_agreement": "agreeT", "explanation_agreement": "explT", "balanced_accuracy": "bacc", "accuracy": "acc", "gain_accuracy": "Δacc", "gain_auc": "Δauc", "gain_f1": "Δf1", "latency_ms": "ms",
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


#: Appended to a gain's mean when its 95% interval excludes 0 (the footnote says so).
SIGNIFICANT = "†"


def mark_significant(text: str, r: pd.Series, metric: str) -> str:
    """``+0.031 ± 0.020`` -> ``+0.031† ± 0.020`` when ``metric``'s interval (``<metric>_lo/_hi``) excludes 0."""
    if not metric.startswith("gain_"):  # only the gains have an interval of the seed mean
        return text
    lo, hi = r.get(f"{metric}_lo_mean"), r.get(f"{metric}_hi_mean")
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi) or not (lo > 0 or hi < 0):
        return text
    mean, sep, rest = text.partition(" ")
    return f"{mean}{SIGNIFICANT}{sep}{rest}"


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
            text = mark_significant(fmt(r[f"{m}_mean"], r[f"{m}_std"], n, spec.digits, signed=m.startswith("gain_")),
                                    r, m)
            if m in best and r["method"] != "teacher" and \
                    r[f"{m}_mean"] == best[m].get((r["dataset"], r["teacher"], r["fraction"])):
                text = bold(text)
            row.append(text)
        row.append("–" if pd.isna(r.get("avg_rank")) else f"{r['avg_rank']:.1f}")
        rows.append(row)
    return headers, rows


# -- display: labels, constant columns, cells ------------------------------------------
#: Column name -> display label, for the Markdown, LaTeX and HTML headers (the direction
#: arrow comes from the metric's spec). Unknown names fall back to ``Words with spaces``.
LABELS = {
    "dataset": "Dataset", "teacher": "Teacher", "student": "Student", "method": "Method", "fraction": "Fraction",
    "explainer": "Explainer", "n": "n",
    "accuracy": "Acc.", "auc": "AUC", "f1": "F1", "gain_accuracy": "ΔAcc.", "gain_auc": "ΔAUC", "gain_f1": "ΔF1",
    "params": "Params", "flops": "FLOPs", "latency_ms": "Latency (ms)", "latency_iqr_ms": "Latency IQR (ms)", "train_seconds": "Train (s)",
    "gain_accuracy_lo": "ΔAcc. 95% lo", "gain_accuracy_hi": "ΔAcc. 95% hi",
    "gain_auc_lo": "ΔAUC 95% lo", "gain_auc_hi": "ΔAUC 95% hi", "teacher_agreement": "Agree T.", "explanation_agreement": "Expl. agree T.", "ece": "ECE",
    "balanced_accuracy": "Bal. acc.",
    "faithfulness_correlation": "Faithf. corr.", "pixel_flipping": "Pixel flip.", "max_sensitivity": "Max. sens.",
    "sparseness": "Sparseness", "complexity": "Complexity", "pointing_game": "Pointing game",
    "attribution_localisation": "Attr. local.", "topk_intersection": "Top-k inters.",
    "relevance_rank_accuracy": "Rel. rank acc.", "mprt": "MPRT", "efficient_mprt": "eMPRT", "road": "ROAD",
    "irof": "IROF", "monotonicity_correlation": "Monot. corr.", "infidelity": "Infidelity",
    "random_logit": "Random logit", "explain_ms_per_image": "ms / image", "avg_rank": "Avg. rank",
}


def label(name: str) -> str:
    """Display label of a column: ``accuracy`` -> ``Acc.``, ``accuracy@0.1`` -> ``Acc. @ 0.1``."""
    if name in LABELS:
        return LABELS[name]
    base, at, suffix = name.partition("@")
    if at:
        return f"{label(base)} @ {suffix}"
    if name.endswith("_vs_random"):
        return f"{label(name[:-len('_vs_random')])} vs. rnd."
    return name.replace("_", " ").capitalize()


def arrow(table: Table, name: str) -> str:
    """↑ / ↓ for a metric (``avg_rank``: ↓), nothing for an id column."""
    if name == "avg_rank":
        return "↓"
    return table.specs[name].arrow if name in table.specs else ""


def heading(table: Table, name: str) -> str:
    return f"{label(name)} {arrow(table, name)}".strip()


@dataclass
class Cell:
    text: str  # plain text, as in the Markdown: "0.827 ± 0.032", "570k", "–"
    value: float | None = None  # what the column sorts by (the mean), for metric cells
    best: bool = False


@dataclass
class View:
    """A table (or part of one) as displayed: the constant id columns move out of the rows."""

    table: Table
    frame: pd.DataFrame
    constants: list[tuple[str, str]]  # (id column, displayed value), the same on every row
    ids: list[str]  # id columns shown
    columns: list[str]  # metric columns shown, avg_rank last
    rows: list[dict[str, Cell]]

    @property
    def items(self) -> list[str]:
        """What every row shares: ``["dataset d", "teacher t", "mean ± std over 3 seeds"]``."""
        out = [f"{k} {v}" for k, v in self.constants if k != "n"]
        n = dict(self.constants).get("n")
        if n is not None:
            out.append(f"mean ± std over {n} seeds" if n != "1" else "one seed")
        return out

    @property
    def caption(self) -> str:
        """``<title> on medmnist:bloodmnist (teacher resnet18; mean ± std over 3 seeds)``."""
        const = dict(self.constants)
        rest = [f"{k} {v}" for k, v in self.constants if k not in ("dataset", "n")]
        seeds = [x for x in self.items if x.startswith(("mean", "one seed"))]
        inner = "; ".join(filter(None, [", ".join(rest)] + seeds))
        return self.table.title + (f" on {const['dataset']}" if "dataset" in const else "") + \
            (f" ({inner})" if inner else "")


def _id_text(key: str, value, n: int) -> str:
    if key == "fraction":
        return "–" if pd.isna(value) else f"{value:g}"
    if key == "n":
        return str(n)
    return str(value)


def _best(table: Table) -> dict[str, pd.Series]:
    """Best mean of each ranked metric per (dataset, teacher, fraction), among the students."""
    f = table.frame
    students = f[f["method"] != "teacher"]
    best = {}
    for m in table.metrics:
        col = f"{m}_mean"
        if table.specs[m].ranked and students[col].notna().any():
            best[m] = students.groupby(["dataset", "teacher", "fraction"], dropna=False)[col].agg(
                "max" if table.specs[m].higher_is_better else "min")
    return best


def view(table: Table, frame: pd.DataFrame | None = None) -> View:
    """Cells of ``frame`` (default: the whole table); id columns constant over its rows become ``constants``."""
    f = table.frame if frame is None else frame
    n_of = f["n"].map(lambda v: 1 if pd.isna(v) else int(v))
    constants = []
    if len(f) > 1:
        for k in table.ids:
            if f[k].nunique(dropna=False) == 1:
                constants.append((k, _id_text(k, f[k].iloc[0], n_of.iloc[0])))
    ids = [k for k in table.ids if k not in dict(constants)]
    columns = list(table.metrics) + (["avg_rank"] if "avg_rank" in f else [])
    best = _best(table)
    rows = []
    for (_, r), n in zip(f.iterrows(), n_of):
        row = {k: Cell(_id_text(k, r[k], n)) for k in ids}
        for m in table.metrics:
            mean = r[f"{m}_mean"]
            text = mark_significant(fmt(mean, r[f"{m}_std"], n, table.specs[m].digits, signed=m.startswith("gain_")),
                                    r, m)
            is_best = m in best and r["method"] != "teacher" and \
                mean == best[m].get((r["dataset"], r["teacher"], r["fraction"]))
            row[m] = Cell(text, None if pd.isna(mean) else float(mean), bool(is_best))
        if "avg_rank" in columns:
            v = r.get("avg_rank")
            row["avg_rank"] = Cell("–" if pd.isna(v) else f"{v:.1f}", None if pd.isna(v) else float(v))
        rows.append(row)
    return View(table, f, constants, ids, columns, rows)


# -- Markdown ---------------------------------------------------------------------------
def to_markdown(tables: list[Table]) -> str:
    if not tables:
        return "No successful results yet.\n"
    parts = []
    for t in tables:
        v = view(t)
        headers = [heading(t, k) for k in v.ids + v.columns]
        rows = [[r[k].text for k in v.ids] + [f"**{r[k].text}**" if r[k].best else r[k].text for k in v.columns]
                for r in v.rows]
        align = ["left"] * len(v.ids) + ["right"] * len(v.columns)
        table = tabulate(rows, headers=headers, tablefmt="pipe", colalign=align, disable_numparse=True)
        context = f"*{' · '.join(v.items)}*\n\n" if v.items else ""
        parts.append(f"## {t.title}\n\n{context}{table}\n\n{t.footnote}\n")
    return "\n".join(parts)


# -- LaTeX ------------------------------------------------------------------------------
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}
_LATEX_SYMBOLS = {"±": r"$\pm$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "–": "--", "—": "---",
                  "Δ": r"$\Delta$", "·": r"$\cdot$", "‖": r"$\|$", "×": r"$\times$", "≥": r"$\geq$",
                  "≤": r"$\leq$", "−": r"$-$", "†": r"\textsuperscript{\dag}",
                  "…": r"\dots{}", "°": r"$^\circ$", "µ": r"$\mu$", "μ": r"$\mu$", "≈": r"$\approx$",
                  "→": r"$\rightarrow$", "‘": "`", "’": "'", "“": "``", "”": "''", "λ": r"$\lambda$",
                  "τ": r"$\tau$", "α": r"$\alpha$", "β": r"$\beta$", "γ": r"$\gamma$", "σ": r"$\sigma$"}
#: The ``\textwidth`` the tables are cut to fit: LaTeX's article class and Springer LNCS (MICCAI), in pt.
TEXTWIDTH_PT = 345.0
TABCOLSEP_PT = 4.0
#: Tables with more body rows than this (their note counted in) become a ``longtable`` that breaks
#: across pages; a float must fit one page.
PAGE_ROWS = 40
LATEX_PREAMBLE = ("\\usepackage{booktabs}  % rules\n"
                  "\\usepackage{longtable} % tables longer than a page (one-column layouts)\n")


def latex_escape(text: str) -> str:
    """Plain text -> LaTeX that a stock pdflatex reads: specials escaped, symbols in math, `code` in typewriter,
    "quotes" as ``quotes''."""
    out = []
    for i, chunk in enumerate(re.split(r"`([^`]*)`", str(text))):
        esc = _escape_plain(chunk)
        out.append(f"\\texttt{{{esc}}}" if i % 2 else re.sub(r'"([^"]*)"', r"``\1''", esc))
    return "".join(out)


def _escape_plain(text: str) -> str:
    import unicodedata

    out = []
    for c in text:
        if c in _LATEX_SPECIAL:
            out.append(_LATEX_SPECIAL[c])
        elif c in _LATEX_SYMBOLS:
            out.append(_LATEX_SYMBOLS[c])
        elif ord(c) > 127:  # pdflatex stops at a character it has no definition for
            out.append(unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode() or "?")
        else:
            out.append(c)
    return "".join(out)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")


# Widths of Computer Modern Roman 10pt glyphs (pt), to cut tables to TEXTWIDTH_PT without TeX.
_CMR10 = dict(zip("abcdefghijklmnopqrstuvwxyz", (5.0, 5.56, 4.44, 5.56, 4.44, 3.06, 5.0, 5.56, 2.78, 3.06, 5.28, 2.78,
                                                  8.33, 5.56, 5.0, 5.56, 5.28, 3.92, 3.94, 3.89, 5.56, 5.28, 7.22, 5.28,
                                                  5.28, 4.44)))
_CMR10.update({c: 5.0 for c in "0123456789"})
_CMR10.update({".": 2.78, ",": 2.78, ":": 2.78, " ": 3.33, "-": 3.33, "+": 7.78, "±": 7.78, "†": 3.5, "↑": 5.0, "↓": 5.0,
               "–": 5.0, "Δ": 8.33, "@": 7.78, "(": 3.89, ")": 3.89, "/": 5.0, "_": 5.0, "M": 9.17, "W": 10.28,
               "m": 8.33, "I": 3.61})


def _width(text: str, bold: bool = False) -> float:
    """Estimated width in pt of plain ``text`` set in 10pt Computer Modern."""
    w = sum(_CMR10.get(c, 7.5 if c.isupper() else 5.0) for c in text)
    return w * (1.12 if bold else 1.0)


def _header_lines(text: str, cell_width: float) -> list[str]:
    """The header on one line, or on two (at the space that balances them) when it is wider than its cells."""
    if _width(text) <= cell_width + 2 or " " not in text:
        return [text]
    spaces = [i for i, c in enumerate(text) if c == " "]
    i = min(spaces, key=lambda i: max(_width(text[:i]), _width(text[i + 1:])))
    return [text[:i], text[i + 1:]]


def _latex_header(text: str, lines: list[str], align: str) -> str:
    def tex(line: str) -> str:
        return latex_escape(line).replace(" $", "~$")  # keep the arrow with its label

    if len(lines) == 1:
        return tex(lines[0])
    return f"\\begin{{tabular}}[b]{{@{{}}{align}@{{}}}}" + "\\\\".join(tex(x) for x in lines) + "\\end{tabular}"


def _latex_cell(cell: Cell, numeric: bool) -> str:
    text = latex_escape(cell.text)
    if numeric:
        text = re.sub(r"(?<![\w.])-(?=\d)", "$-$", text)  # a minus, not a hyphen
    return f"\\textbf{{{text}}}" if cell.best else text


def _contiguous(frame: pd.DataFrame, keys: list[str]) -> bool:
    """Whether each combination of ``keys`` occupies one run of consecutive rows."""
    runs = (frame[keys].astype(str).agg("\x1f".join, axis=1))
    changes = runs.ne(runs.shift())
    return runs[changes].is_unique


def _chunks(widths: dict[str, float], fixed: float) -> list[list[str]]:
    """Split the metric columns, in order, into as few parts as fit TEXTWIDTH_PT next to the fixed
    columns, as even in width as can be (no part of one lone column where two of three would do)."""
    names, room = list(widths), TEXTWIDTH_PT - 2 - fixed
    cost = [widths[m] + 2 * TABCOLSEP_PT for m in names]
    greedy, used = [[]], 0.0  # filling each part in turn needs the fewest parts
    for i, c in enumerate(cost):
        if greedy[-1] and used + c > room:
            greedy.append([])
            used = 0.0
        greedy[-1].append(i)
        used += c
    k, best = len(greedy), None
    if comb(len(names) - 1, k - 1) <= 20_000:  # then the most even split into as many parts
        for cuts in combinations(range(1, len(names)), k - 1):
            parts = [list(range(a, b)) for a, b in zip((0,) + cuts, cuts + (len(names),))]
            widths_ = [sum(cost[i] for i in part) for part in parts]
            if all(w <= room or len(part) == 1 for w, part in zip(widths_, parts)) and \
                    (best is None or max(widths_) < best[0]):
                best = (max(widths_), parts)
    return [[names[i] for i in part] for part in (best[1] if best else greedy)]


def latex_table(t: Table) -> str:
    """One table as LaTeX fragments that fit TEXTWIDTH_PT: one per dataset (and teacher), its metric
    columns split into as many parts as needed, a ``longtable`` where the rows exceed a page.

    Id columns constant over a part's rows go into its caption; ``student`` and ``fraction``
    become group rows where they are contiguous; repeated values of the remaining id
    columns are left blank. Each part has a ``\\label{tab:<table>-<dataset>[-p<i>]}``; the
    table's footnote follows the last part of each dataset.
    """
    split = [k for k in ("dataset", "teacher") if k in t.ids and t.frame[k].nunique(dropna=False) > 1]
    pieces = list(t.frame.groupby(split, sort=False, dropna=False)) if split else [((), t.frame)]
    out = []
    for _, frame in pieces:
        v = view(t, frame)
        groups = [k for k in ("student", "fraction") if k in v.ids]
        while groups and not _contiguous(frame, groups):
            groups = groups[:-1]
        row_ids = [k for k in v.ids if k not in groups]
        if not row_ids:
            groups, row_ids = [], v.ids
        width = {k: max([_width(heading(t, k))] + [_width(r[k].text) for r in v.rows]) for k in row_ids}
        metric_width = {}  # ranked metrics and avg_rank first: split, the quality columns stay together
        order = [m for m in v.columns if m in t.specs and t.specs[m].ranked] + \
            [m for m in v.columns if m == "avg_rank"] + [m for m in v.columns if m in t.specs and not t.specs[m].ranked]
        for m in order:
            cells_w = max([_width(r[m].text, r[m].best) for r in v.rows] + [0.0])
            lines = _header_lines(heading(t, m), cells_w)
            metric_width[m] = max([cells_w] + [_width(x) for x in lines])
        fixed = sum(width.values()) + 2 * TABCOLSEP_PT * (len(row_ids) - 1)
        chunks = _chunks(metric_width, fixed)
        long = any(_rows(v, groups) + 0.8 * _note_lines(t.footnote if i == len(chunks) else "") > PAGE_ROWS
                   for i in range(1, len(chunks) + 1))  # one longtable part: all, so that they stay in order
        dataset = dict(v.constants).get("dataset") or str(frame["dataset"].iloc[0])
        base = f"tab:{_slug(t.name)}-{_slug(dataset)}"
        if "teacher" in split:
            base += f"-{_slug(frame['teacher'].iloc[0])}"
        for i, chunk in enumerate(chunks, start=1):
            caption = latex_escape(v.caption)
            if len(chunks) > 1:
                caption += f", part {i} of {len(chunks)}"
            out.append(_latex_part(t, v, groups, row_ids, chunk, metric_width, caption + ".",
                                   base + (f"-p{i}" if len(chunks) > 1 else ""),
                                   t.footnote if i == len(chunks) else "", long))
    return "\n".join(out)


def _note_lines(note: str) -> float:
    """Lines of a note set in \\footnotesize (8pt type on 9.5pt lines) across TEXTWIDTH_PT."""
    return _width(note) * 0.8 / TEXTWIDTH_PT + 1 if note else 0


def _rows(v: View, groups: list[str]) -> int:
    """Body lines of a part: its rows, plus a group row and a rule per group."""
    n_groups = len(v.frame[groups].drop_duplicates()) if groups else 0
    return len(v.rows) + 2 * n_groups - (1 if n_groups else 0)


def _latex_part(t: Table, v: View, groups: list[str], row_ids: list[str], metrics: list[str],
                metric_width: dict[str, float], caption: str, label_: str, note: str, long: bool) -> str:
    ncols = len(row_ids) + len(metrics)
    spec = "@{}" + "l" * len(row_ids) + "r" * len(metrics) + "@{}"
    head = " & ".join([latex_escape(heading(t, k)) for k in row_ids] +
                      [_latex_header(heading(t, m), _header_lines(heading(t, m), metric_width[m]), "r")
                       for m in metrics]) + " \\\\"
    body, last_group, previous = [], None, None
    for r, (_, row) in zip(v.rows, v.frame.iterrows()):
        key = tuple(_id_text(k, row[k], int(row["n"]) if not pd.isna(row["n"]) else 1) for k in groups)
        if groups and key != last_group:
            if last_group is not None:
                body.append("\\midrule")
            text = ", ".join([f"\\textit{{{latex_escape(key[0])}}}" if groups[0] == "student" else
                              latex_escape(f"{groups[0]} {key[0]}")] +
                             [latex_escape(f"{g} {x}") for g, x in zip(groups[1:], key[1:])])
            body.append(f"\\multicolumn{{{ncols}}}{{@{{}}l}}{{{text}}} \\\\")
            last_group, previous = key, None
        ids = [r[k].text for k in row_ids]
        shown = [("" if previous is not None and ids[:j + 1] == previous[:j + 1] and j < len(ids) - 1 else x)
                 for j, x in enumerate(ids)]
        previous = ids
        body.append(" & ".join([latex_escape(x) for x in shown] + [_latex_cell(r[m], True) for m in metrics])
                    + " \\\\")
    note_tex = f"{{\\footnotesize\\raggedright {latex_escape(note)}\\par}}\n" if note else ""
    if not long:
        return (f"\\begin{{table}}[htbp]\n\\centering\n\\setlength{{\\tabcolsep}}{{{TABCOLSEP_PT:g}pt}}\n"
                f"\\caption{{{caption}}}\n\\label{{{label_}}}\n\\begin{{tabular}}{{{spec}}}\n\\toprule\n{head}\n"
                f"\\midrule\n" + "\n".join(body) + "\n\\bottomrule\n\\end{tabular}\n"
                + (f"\\par\\medskip\n{note_tex}" if note else "") + "\\end{table}\n")
    return (f"\\begingroup\n\\setlength{{\\tabcolsep}}{{{TABCOLSEP_PT:g}pt}}\n\\begin{{longtable}}{{{spec}}}\n"
            f"\\caption{{{caption}}}\\label{{{label_}}} \\\\\n\\toprule\n{head}\n\\midrule\n\\endfirsthead\n"
            f"\\multicolumn{{{ncols}}}{{@{{}}l}}{{\\footnotesize\\itshape Table~\\thetable{{}} (continued)}} \\\\\n"
            f"\\toprule\n{head}\n\\midrule\n\\endhead\n"
            f"\\midrule\n\\multicolumn{{{ncols}}}{{r@{{}}}}"
            f"{{\\footnotesize\\itshape continued on the next page}} \\\\\n"
            f"\\endfoot\n\\bottomrule\n\\endlastfoot\n" + "\n".join(body) + "\n\\end{longtable}\n\\endgroup\n"
            + note_tex)


def to_latex(tables: list[Table]) -> str:
    """All tables as one fragment to ``\\input`` (see :data:`LATEX_PREAMBLE` for the packages it needs)."""
    return _latex_fragment(tables)


def _latex_fragment(tables: list[Table]) -> str:
    preamble = "".join(f"%   {line}\n" for line in LATEX_PREAMBLE.splitlines())
    head = (f"% kdbench leaderboard: \\input{{}} this file in a document whose preamble has\n{preamble}"
            f"% Every table fits a {TEXTWIDTH_PT:g}pt \\textwidth (article, Springer LNCS); run pdflatex twice\n"
            f"% (longtable settles its column widths on the second run).\n")
    return head + "\n".join(latex_table(t) for t in tables)


def latex_standalone(fragments: list[str], title: str = "kdbench leaderboard") -> str:
    """A document that compiles as-is and ``\\input``s the fragments next to it."""
    inputs = "\n\\clearpage\n".join(f"\\input{{{name}}}" for name in fragments)
    return ("% Compile as-is: pdflatex (twice, for longtable); the tables themselves are in the\n"
            "% fragments it \\input s, which a paper \\input s the same way.\n"
            "\\documentclass{article}\n" + LATEX_PREAMBLE +
            f"\\title{{{latex_escape(title)}}}\n\\date{{}}\n\\begin{{document}}\n\\maketitle\n{inputs}\n"
            "\\end{document}\n")


# -- HTML -------------------------------------------------------------------------------
#: Figures of a dataset embedded in leaderboard.html when their PNG is next to it: (stem, caption).
#: ``explanations_`` is drawn by ``kdbench run`` after the tables, so it is always embedded
#: (with the explanation table) and hides itself when the file is missing.
FIGURES = (("tradeoff_{}", "Accuracy against FLOPs and parameters"),
           ("fractions_{}", "Accuracy with less training data"),
           ("explanations_bars_{}", "Explanation quality per model and explainer"),
           ("explanations_{}", "Explanations of the teacher and of each full-data student"))

_HTML_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em 2em;color:#222}
h2{font-size:1.2em;margin:1.8em 0 .3em}
.context{margin:.2em 0 .6em;color:#444}
.scroll{overflow-x:auto;max-width:100%}
table.kdbench{border-collapse:collapse;font-size:13px}
table.kdbench th,table.kdbench td{padding:3px 9px;border-bottom:1px solid #e3e3e3;white-space:nowrap}
table.kdbench thead th{border-bottom:2px solid #555;cursor:pointer;user-select:none;vertical-align:bottom;
  position:sticky;top:0;background:#fff}
table.kdbench th.txt,table.kdbench td.txt{text-align:left}
table.kdbench th.num,table.kdbench td.num{text-align:right;font-variant-numeric:tabular-nums}
table.kdbench th[aria-sort=ascending]::after{content:" \\25B2";font-size:.75em}
table.kdbench th[aria-sort=descending]::after{content:" \\25BC";font-size:.75em}
table.kdbench tr.teacher td{background:#f5f5f5;font-style:italic}
table.kdbench tbody tr:hover td{background:#eef4fb}
.footnote{font-size:12px;color:#555;max-width:75em}
figure{margin:1em 0 2em}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:12px;color:#555}
""".strip()

#: Click (or Enter on) a header: sort by it, again: the other way; empty cells stay last.
_HTML_SORT = """
document.querySelectorAll("table.kdbench").forEach(function (table) {
  var heads = table.querySelectorAll("thead th");
  heads.forEach(function (th, col) {
    function sort() {
      var asc = th.getAttribute("aria-sort") !== "ascending", num = th.classList.contains("num");
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var cell = row.cells[col], v = cell.getAttribute("data-v");
        return num ? (v === null || v === "" ? NaN : parseFloat(v)) : cell.textContent.trim();
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (num) {
          if (isNaN(x) || isNaN(y)) { return isNaN(x) - isNaN(y); }
          return asc ? x - y : y - x;
        }
        return asc ? x.localeCompare(y) : y.localeCompare(x);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    }
    th.tabIndex = 0;
    th.title = (th.title ? th.title + ": " : "") + "click to sort";
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
    });
  });
});
""".strip()


def _html_text(text: str) -> str:
    """Escaped text with `code` as <code>."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(str(text), quote=False))


def figures_for(tables: list[Table], out_dir: Path | None) -> list[tuple[str, str | None, str]]:
    """(PNG, SVG or None, caption) of each figure of each dataset that ``out_dir`` holds, relative names."""
    from kdbench.report.figures import file_stem

    datasets = list(dict.fromkeys(d for t in tables for d in t.frame["dataset"].dropna()))
    has_xai = any(t.name == "explanations" for t in tables)
    out = []
    for dataset in datasets:
        for stem, caption in FIGURES:
            name = stem.format(file_stem(dataset))
            always = stem == "explanations_{}" and has_xai
            if always or (out_dir is not None and (Path(out_dir) / f"{name}.png").is_file()):
                svg = f"{name}.svg" if out_dir is not None and (Path(out_dir) / f"{name}.svg").is_file() else None
                out.append((f"{name}.png", svg, f"{dataset}: {caption}"))
    return out


def to_html(tables: list[Table], figures: list[tuple[str, str | None, str]] = ()) -> str:
    from urllib.parse import quote

    body = []
    for t in tables:
        v = view(t)
        anchor = _slug(t.name)
        head = "".join(f'<th class="txt" scope="col" title="{html.escape(k)}">{html.escape(heading(t, k))}</th>'
                       for k in v.ids)
        head += "".join(f'<th class="num" scope="col" title="{html.escape(m)}">{html.escape(heading(t, m))}</th>'
                        for m in v.columns)
        rows = []
        for r, method in zip(v.rows, v.frame["method"]):
            tds = "".join(f'<td class="txt">{html.escape(r[k].text)}</td>' for k in v.ids)
            for m in v.columns:
                c = r[m]
                text = html.escape(c.text)
                data = "" if c.value is None else f"{c.value:.10g}"
                tds += f'<td class="num" data-v="{data}">{f"<strong>{text}</strong>" if c.best else text}</td>'
            cls = ' class="teacher"' if method == "teacher" else ""
            rows.append(f"<tr{cls}>{tds}</tr>")
        context = f'<p class="context">{html.escape(" · ".join(v.items))}</p>\n' if v.items else ""
        body.append(f'<section id="{anchor}">\n<h2>{html.escape(t.title)}</h2>\n{context}'
                    f'<div class="scroll"><table class="kdbench" id="table-{anchor}">\n'
                    f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>\n"
                    f'<p class="footnote">{_html_text(t.footnote)}</p>\n</section>')
    if figures:
        figs = []
        for png, svg, caption in figures:
            hide = ' onerror="this.closest(\'figure\').remove()"' if png.startswith("explanations_") and \
                not png.startswith("explanations_bars_") else ""
            img = f'<img src="{quote(png)}" alt="{html.escape(caption)}" loading="lazy"{hide}>'
            link = f'<a href="{quote(svg)}">{img}</a>' if svg else img
            figs.append(f"<figure>{link}<figcaption>{html.escape(caption)}"
                        f"{' (click for the SVG)' if svg else ''}</figcaption></figure>")
        body.append('<section id="figures">\n<h2>Figures</h2>\n' + "\n".join(figs) + "\n</section>")
    if not tables:
        body.append("<p>No successful results yet.</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>kdbench leaderboard</title>\n<style>\n{_HTML_STYLE}\n</style></head>\n<body>\n"
            + "\n".join(body) + f"\n<script>\n{_HTML_SORT}\n</script>\n</body></html>\n")


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
    from rich.markup import escape
    from rich.table import Table as RichTable
    from rich.text import Text

    BEST = "\0"
    out = []
    for t in tables:
        for (dataset, teacher), part in t.frame.groupby(["dataset", "teacher"], sort=False):
            sub = Table(t.name, t.title, part, t.ids, t.metrics, t.specs)
            headers, rows = cells(sub, bold=lambda s: BEST + s)  # names come from runs.jsonl: never markup
            rows = [[f"[bold green]{escape(c[1:])}[/]" if c.startswith(BEST) else escape(c) for c in r] for r in rows]
            keep = [i for i, h in enumerate(headers) if h not in ("dataset", "teacher", "n")]
            table = RichTable(title=escape(f"{t.title} · {dataset} · teacher {teacher}"), title_justify="left")
            for i in keep:
                name, _, arrow = headers[i].partition(" ")
                table.add_column(f"{SHORT.get(name, name)} {arrow}".strip(),
                                 justify="left" if i < len(t.ids) else "right")
            for r in rows:
                table.add_row(*[r[i] for i in keep])
            out.append(table)
        out.append(Text(t.footnote))
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
        for t in tables:
            written.append(_write(out_dir / f"leaderboard_{t.name}.tex", _latex_fragment([t])))
        written.append(_write(out_dir / "leaderboard.standalone.tex", latex_standalone(["leaderboard.tex"])))
    if "html" in formats:
        written.append(write_html(tables, out_dir))
    if "csv" in formats:
        for t in tables:
            path = out_dir / f"leaderboard_{t.name}.csv"
            t.frame.to_csv(path, index=False)
            written.append(path)
    if "json" in formats:
        written.append(_write(out_dir / "leaderboard.json", to_json(tables, conflicts)))
    return written


def write_html(tables: list[Table], out_dir: Path) -> Path:
    """``leaderboard.html`` with the figures that ``out_dir`` holds now (publishing writes it again after the plots)."""
    return _write(Path(out_dir) / "leaderboard.html", to_html(tables, figures_for(tables, out_dir)))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
