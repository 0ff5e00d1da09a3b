"""A whole benchmark run as one Python call, and its results as pandas frames.

:func:`run_benchmark` is ``kdbench run`` once its flags are read: the runner, then the
tables (:func:`~kdbench.report.publish.publish`), the explanation figures and the
``on_run_end`` observers, in the command's order. :func:`benchmark_from_options` turns
the keyword arguments of :func:`kdbench.api.run` into a :class:`Benchmark` the way the
command line turns flags into one (same checks, same messages). :class:`Results` holds
what a notebook reads: every row of ``runs.jsonl`` and each leaderboard table as a
DataFrame; :func:`load_results` reads a finished output folder without running anything.

Loading the plugins is the caller's part (this stage may not import :mod:`kdbench.plugins`):
:func:`kdbench.api.run` and the CLI load them and pass them in.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from kdbench.config.benchmark import Benchmark, apply, load_toml
from kdbench.errors import ConfigError, KdbenchError, storage_failure
from kdbench.report.leaderboard import Table, build_tables
from kdbench.report.publish import Published, publish, tabulable
from kdbench.run.progress import Reporter
from kdbench.run.results import latest_rows, read_rows
from kdbench.run.runner import RunSummary


def _installed_benchmarks() -> Path:
    """The benchmark definitions installed with kdbench (``benchmarks/`` ships as ``kdbench.benchmarks``)."""
    try:
        from importlib.resources import files

        return Path(str(files("kdbench.benchmarks")))
    except (ImportError, TypeError):  # a source tree that was never installed
        return Path(__file__).resolve().parents[2] / "benchmarks"


#: Where a benchmark given by name (``config="breastmnist"``) is looked up, in this order: the
#: working directory's benchmarks/ (a checkout), then the definitions installed with kdbench.
BENCHMARK_FOLDERS = (Path("benchmarks"), _installed_benchmarks(), Path(__file__).resolve().parents[2] / "benchmarks")
#: The option tables of a benchmark and an example of each, for the error messages.
OPTION_TABLES = {"method_options": ("hinton", "T", 2), "dataset_options": ("synthetic", "n_train", 500),
                 "plugin_settings": ("mlflow", "tracking_uri", "file:./mlruns")}
_LIST_SETTINGS = {f.name for f in fields(Benchmark) if isinstance(getattr(Benchmark(), f.name), list)}


# -- the benchmark ------------------------------------------------------------------------
def benchmark_from_options(config: str | os.PathLike | None = None, *, where: str = "kdbench.run()",
                           method_options: dict | None = None, dataset_options: dict | None = None,
                           plugin_settings: dict | None = None, **settings: Any) -> Benchmark:
    """A benchmark from a TOML file (or a benchmark's name), overridden by ``settings``.

    ``settings`` are :class:`Benchmark` fields (``methods=["hinton"]``, ``epochs=1``, ...);
    None means "not given". Lists may also be comma-separated text (``"hinton,fitnets"``)
    or tuples; a single seed or fraction may be given bare. The option tables are dicts of
    dicts (``method_options={"hinton": {"T": 2}}``), merged into the file's like the CLI's
    ``--method-opt``. A bad value raises the :class:`ConfigError` the CLI would print.
    """
    bench = load_toml(resolve_config(config)) if config not in (None, "") else Benchmark()
    values = {key: _plain_setting(key, value) for key, value in settings.items() if value is not None}
    apply(bench, values, where=where)
    for table, given in (("method_options", method_options), ("dataset_options", dataset_options),
                         ("plugin_settings", plugin_settings)):
        for name, opts in _option_table(table, given, where).items():
            getattr(bench, table).setdefault(name, {}).update(opts)
    return bench


def resolve_config(config: str | os.PathLike) -> Path:
    """A benchmark file: the path itself, or ``benchmarks/<name>.toml`` for a bare name."""
    path = Path(os.fspath(config)).expanduser()
    if path.is_file() or path.suffix or len(path.parts) != 1:
        return path  # load_toml names a missing file
    for folder in BENCHMARK_FOLDERS:
        if (folder / f"{path.name}.toml").is_file():
            return folder / f"{path.name}.toml"
    known = sorted({p.stem for folder in BENCHMARK_FOLDERS if folder.is_dir() for p in folder.glob("*.toml")})
    raise ConfigError(f"benchmark {os.fspath(config)!r}: no such file, nor a benchmarks/{path.name}.toml "
                      f"(benchmarks: {', '.join(known) or 'none found'}); give a TOML path or one of those names")


def _plain(value):
    """numpy numbers and paths as the plain Python values a benchmark holds."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, int)):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, float, int)):
        return float(value)
    return value


def _plain_setting(key: str, value):
    if key in _LIST_SETTINGS:
        if isinstance(value, (tuple, range)) or type(value).__name__ == "ndarray":
            value = list(value)
        elif isinstance(value, numbers.Number) and not isinstance(value, bool):
            value = [value]  # seeds=0, fractions=0.5
        if isinstance(value, list):
            return [_plain(v) for v in value]
    return _plain(value)


def _option_table(table: str, given, where: str) -> dict[str, dict[str, Any]]:
    if given is None:
        return {}
    name, key, value = OPTION_TABLES[table]
    example = f"{table}={{{name!r}: {{{key!r}: {value!r}}}}}"
    if not isinstance(given, dict) or not all(isinstance(k, str) and k and isinstance(v, dict)
                                              for k, v in given.items()):
        raise ConfigError(f"{where}: {table} must map each name to a dict of its options, e.g. {example}, "
                          f"got {_short(given)}")
    for owner, opts in given.items():
        bad = [k for k in opts if not isinstance(k, str) or not k]
        if bad:
            raise ConfigError(f"{where}: {table}[{owner!r}] has the key {bad[0]!r}; option names are text, "
                              f"e.g. {example}")
    return {owner: {k: _plain(v) for k, v in opts.items()} for owner, opts in given.items()}


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# -- the run --------------------------------------------------------------------------------
@dataclass
class RunOutcome:
    """What one run left: the runner's summary, the published tables and every stored row."""

    summary: RunSummary
    published: Published
    rows: list[dict]
    bench: Benchmark


def run_benchmark(bench: Benchmark, plugins, out_dir: str | Path, *, reporter: Reporter | None = None,
                  cache_dir: str | Path | None = None, force: bool = False, retry_failed: bool = False,
                  executor: str = "local", ray_address: str | None = None, ray_cpus_per_task: int = 1,
                  plugin_modules=()) -> RunOutcome:
    """Run ``bench`` into ``out_dir`` and publish it, as ``kdbench run`` does.

    ``plugins`` is a loaded :class:`kdbench.plugins.Plugins`. Bad input raises a
    :class:`KdbenchError` before anything is trained; a job that fails is a failed row and
    the run goes on. The tables are written before the figures, and a figure problem is a
    warning, never a lost result.
    """
    from kdbench.report.figures import write_run_figures
    from kdbench.run.runner import Runner
    from kdbench.run.store import ArtifactStore

    out = Path(out_dir)
    reporter = reporter or Reporter()
    with reporter:
        runner = Runner(bench, plugins, out, store=ArtifactStore(cache_dir), reporter=reporter, force=force,
                        retry_failed=retry_failed, executor=executor, ray_address=ray_address,
                        ray_cpus_per_task=ray_cpus_per_task, plugin_modules=plugin_modules)
        summary = runner.run()
    rows, _ = read_rows(out / "runs.jsonl")  # unreadable lines are in summary.warnings already
    try:
        published = publish(rows, out, benchmark=bench.name)
    except OSError as exc:  # the rows are safe in runs.jsonl; only the tables could not be written
        raise storage_failure(exc) or KdbenchError(
            f"cannot write the tables to {out}: {exc.strerror or exc}; the rows in runs.jsonl are kept, "
            f"fix it and run `kdbench leaderboard {out}`") from None
    try:  # tables first: a figure problem must never cost the results
        published.paths += write_run_figures(bench, rows, runner.store, runner.steps.dataset, out)
    except Exception as exc:
        published.warnings.append(f"could not draw the explanation figure: {type(exc).__name__}: {exc}")
    published.warnings += plugins.notify("on_run_end", out_dir=out, paths=list(published.paths))
    return RunOutcome(summary, published, rows, bench)


#: The columns of a dry run's plan, one row per job.
PLAN_COLUMNS = ["dataset", "teacher", "student", "method", "seed", "fraction", "state", "teacher_cached",
                "config_hash"]


def plan_benchmark(bench: Benchmark, plugins, out_dir: str | Path, *, cache_dir: str | Path | None = None,
                   force: bool = False, retry_failed: bool = False) -> pd.DataFrame:
    """``kdbench run --dry-run``: every job and what a run would do with it, as a DataFrame.

    Checks everything a run checks (names, options, data, pre-flight) and trains or writes
    nothing. ``state`` is ``done``, ``failed`` (skipped unless ``retry_failed``) or ``to run``;
    ``teacher_cached`` whether the job's teacher is already in the artifact store.
    """
    from kdbench.run.runner import Runner
    from kdbench.run.store import ArtifactStore

    runner = Runner(bench, plugins, Path(out_dir), store=ArtifactStore(cache_dir), force=force,
                    retry_failed=retry_failed)
    return pd.DataFrame([{"dataset": job.dataset, "teacher": job.teacher, "student": job.student,
                          "method": job.method, "seed": job.seed, "fraction": job.fraction, "state": state,
                          "teacher_cached": cached, "config_hash": job.config_hash}
                         for job, state, cached in runner.plan()], columns=PLAN_COLUMNS)


# -- the results ----------------------------------------------------------------------------
@dataclass(repr=False, eq=False)
class Results:
    """A benchmark's results as pandas frames.

    - ``rows``: every result row of ``runs.jsonl`` (the latest per job, kind and explainer,
      as the leaderboard reads them; schema in docs/results-schema.md), one column per field.
    - ``tables``: each leaderboard table by name (``predictive``, ``explanations``,
      ``explanations_vs_random``, ``fractions``; only those with rows), with the columns
      ``<metric>_mean``, ``<metric>_std``, ``n``, ``<metric>_rank`` and ``avg_rank``.
    - ``failed``: the rows whose status is ``failed`` (their ``error`` says why).
    - ``summary``: the run's :class:`~kdbench.run.runner.RunSummary` (jobs run, skipped,
      failed, teachers trained); None for results read by :func:`load_results`.
    - ``warnings``: what the CLI would have printed as warnings; ``paths``: the files written.
    """

    out_dir: Path
    rows: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    summary: RunSummary | None = None
    warnings: list[str] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    leaderboard: list[Table] = field(default_factory=list)  # the tables with their metric specs and footnotes

    @property
    def failed(self) -> pd.DataFrame:
        if "status" not in self.rows:
            return self.rows.iloc[0:0]
        return self.rows[self.rows["status"] == "failed"]

    @property
    def predictive(self) -> pd.DataFrame | None:
        """The predictive leaderboard (None when no job finished)."""
        return self.tables.get("predictive")

    @property
    def explanations(self) -> pd.DataFrame | None:
        """The explanation leaderboard (None without explainers)."""
        return self.tables.get("explanations")

    def __repr__(self) -> str:
        statuses = self.rows["status"].value_counts().to_dict() if "status" in self.rows else {}
        counts = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
        lines = [f"Results({str(self.out_dir)!r}): {len(self.rows)} rows" + (f" ({counts})" if counts else "")]
        for name, frame in self.tables.items():
            lines.append(f"  tables[{name!r}]: {frame.shape[0]} rows x {frame.shape[1]} columns")
        if not self.tables:
            lines.append("  no tables (no finished job)")
        if self.warnings:
            n = len(self.warnings)
            lines.append(f"  {n} warning{'s' if n != 1 else ''} (see .warnings)")
        return "\n".join(lines)


def rows_frame(rows: list[dict]) -> pd.DataFrame:
    """Every row as the leaderboard reads it (the latest per job, kind and explainer), as a DataFrame."""
    return pd.DataFrame(latest_rows(rows))


def results_from_rows(rows: list[dict], out_dir: str | Path, *, tables: list[Table] | None = None,
                      summary: RunSummary | None = None, warnings=(), paths=()) -> Results:
    """A :class:`Results` from stored rows; the tables are built as ``publish`` builds them unless given."""
    warnings = list(warnings)
    if tables is None:
        kept, skipped = tabulable(rows)
        tables, conflicts = build_tables(kept)
        warnings += conflicts + skipped
    return Results(Path(out_dir), rows_frame(rows), {t.name: t.frame for t in tables}, summary, warnings,
                   list(paths), list(tables))


def outcome_results(done: RunOutcome, warnings=()) -> Results:
    """The :class:`Results` of a finished :func:`run_benchmark`, with every warning the CLI prints."""
    published = done.published
    return results_from_rows(done.rows, done.summary.out_dir, tables=published.tables, summary=done.summary,
                             warnings=[*warnings, *done.summary.warnings, *published.conflicts, *published.warnings],
                             paths=published.paths)


def load_results(path: str | os.PathLike) -> Results:
    """Read a finished output folder (or its ``runs.jsonl``) without running anything.

    Raises a :class:`ConfigError` when there is no ``runs.jsonl`` at ``path``, or when
    none of its lines is a result row.
    """
    given = Path(os.fspath(path)).expanduser()
    file = given / "runs.jsonl" if given.is_dir() else given
    if not file.is_file():
        raise ConfigError(f"{os.fspath(path)}: no runs.jsonl there; give the output folder of a kdbench run "
                          f"(kdbench run --out, kdbench.run(out=...)) or a runs.jsonl file")
    try:
        rows, warnings = read_rows(file)
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror or exc}") from None
    if not rows and warnings:
        raise ConfigError(f"{file}: none of its {len(warnings)} lines is a result row (first: {warnings[0]}); "
                          f"give the runs.jsonl of a kdbench run")
    return results_from_rows(rows, file.parent, warnings=warnings)
