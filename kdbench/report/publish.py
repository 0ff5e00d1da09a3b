"""Publishing a result set: every table format, the plots and the summary, from stored rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kdbench.errors import ConfigError
from kdbench.report.leaderboard import (
    PREDICTIVE,
    Table,
    build_tables,
    resolve_conflicts,
    xai_specs,
)
from kdbench.report.render import FORMATS, write_html, write_tables
from kdbench.report.teacher_check import weak_teachers
from kdbench.run.outdir import refuse_links_inside
from kdbench.run.results import ID_COLUMNS


@dataclass
class Published:
    tables: list[Table]
    paths: list[Path] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def publish(rows: list[dict], out_dir: str | Path, *, benchmark: str = "", formats=FORMATS, metrics=None,
            sort: str | None = None, plots: bool = True) -> Published:
    check_arguments(formats, metrics, sort)
    out_dir = Path(out_dir)
    refuse_links_inside(out_dir)  # tables are written by name: never through a planted link
    rows, skipped = tabulable(rows)
    clean, conflicts = resolve_conflicts(rows)
    tables, _ = build_tables(clean, metrics, sort)
    result = Published(tables, conflicts=conflicts, warnings=skipped + weak_teachers(clean))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output directory {out_dir}: {exc.strerror or exc}; "
                          f"choose another --out") from None
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


def metric_names() -> list[str]:
    """Every metric a leaderboard can show or sort by."""
    return list(PREDICTIVE) + [m for m in xai_specs() if m not in PREDICTIVE]


def check_arguments(formats, metrics, sort) -> None:
    """Refuse an unknown format, metric or sort key, naming the choices, before anything is written."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigError(f"unknown format {unknown[0]!r} (formats: {', '.join(FORMATS)})" if unknown else
                          f"no format given (formats: {', '.join(FORMATS)})")
    names = metric_names()
    for m in metrics or []:
        if m not in names:
            raise ConfigError(f"unknown metric {m!r} for --metrics (metrics: {', '.join(names)})")
    if sort is not None and sort not in names + ["avg_rank"]:
        raise ConfigError(f"unknown metric {sort!r} for --sort (avg_rank or a metric: {', '.join(names)})")


def tabulable(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """The rows the tables can place, and a warning per row left out (one without its job's columns)."""
    kept, warnings = [], []
    for r in rows:
        missing = [c for c in ID_COLUMNS if c not in r]
        if r.get("status") == "ok" and r.get("kind", "predictive") == "predictive":
            missing += [m for m in ("accuracy", "auc", "f1") if m not in r]
        if missing:
            warnings.append(f"left a row out of the tables (config {r.get('config_hash')}): it has no "
                            f"{', '.join(missing)}")
        else:
            kept.append(r)
    return kept, warnings
