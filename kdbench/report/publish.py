"""Publishing a result set: every table format, the plots and the summary, from stored rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kdbench.report.leaderboard import Table, build_tables, resolve_conflicts
from kdbench.report.render import FORMATS, write_html, write_tables
from kdbench.run.outdir import refuse_links_inside


@dataclass
class Published:
    tables: list[Table]
    paths: list[Path] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def publish(rows: list[dict], out_dir: str | Path, *, benchmark: str = "", formats=FORMATS, metrics=None,
            sort: str | None = None, plots: bool = True) -> Published:
    out_dir = Path(out_dir)
    refuse_links_inside(out_dir)  # tables are written by name: never through a planted link
    clean, conflicts = resolve_conflicts(rows)
    tables, _ = build_tables(clean, metrics, sort)
    result = Published(tables, conflicts=conflicts)
    result.paths += write_tables(tables, conflicts, out_dir, formats)
    if plots and tables:
        from kdbench.report.plots import write_plots

        try:  # tables first: a plotting problem must never cost the results
            result.paths += write_plots(tables, out_dir)
        except Exception as exc:
            result.warnings.append(f"could not draw the plots: {type(exc).__name__}: {exc}")
        if "html" in formats:  # again, now with the plots it embeds
            write_html(tables, out_dir)
    if tables:
        from kdbench.report.summary import write_summary

        result.paths.append(write_summary(clean, tables, out_dir, benchmark or out_dir.name))
    return result
