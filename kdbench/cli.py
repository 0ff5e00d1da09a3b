"""The ``kdbench`` command line: ``run``, ``plugins`` and ``leaderboard``.

Exit status: 0 all jobs ok, 1 some jobs failed (recorded as failed rows), 2 bad input
(one line on stderr, no traceback), 130 interrupted (finished rows are kept; re-run the
same command to resume).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from rich.console import Console

from kdbench.config.benchmark import Benchmark, apply, load_toml, parse_assignments
from kdbench.errors import ConfigError, KdbenchError, storage_failure
from kdbench.evaluate.selection import SELECTION_RULES
from kdbench.run import interrupts


def messages() -> Console:
    """stderr for one-line messages: no emoji codes (``folder:/x/brain`` printed as a brain glyph) and no
    wrapping at 80 columns when piped, so a warning stays one line in a CI log."""
    return Console(stderr=True, emoji=False, soft_wrap=True)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line, with exit status 2."""

    def error(self, message):
        self.exit(2, f"kdbench: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from kdbench import __version__
    from kdbench.config.benchmark import Benchmark

    d = Benchmark()  # the defaults, named in every flag's help
    p = _Parser(prog="kdbench", description="Benchmark knowledge distillation for medical imaging.")
    p.add_argument("--version", action="version", version=f"kdbench {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a benchmark: teachers x students x methods x seeds x fractions")
    run.add_argument("--config", help="benchmark definition: a TOML file, or the name of one kdbench ships "
                                      "(synthetic-demo, breastmnist, pneumoniamnist, bloodmnist); flags override it")
    for flag, what in [("datasets", "dataset specs, e.g. synthetic,medmnist:pneumoniamnist"),
                       ("teachers", "teacher models (any timm name or registered model)"),
                       ("students", "student models"), ("methods", "KD methods (scratch is added as the baseline)"),
                       ("explainers", "explainers to score; '' turns explanation scoring off"),
                       ("seeds", "seeds, e.g. 0,1,2"),
                       ("fractions", "training-data fractions for students, e.g. 0.1,1.0")]:
        default = ",".join(str(v) for v in getattr(d, flag))
        run.add_argument(f"--{flag}", help=f"comma-separated {what} (default {default})")
    run.add_argument("--epochs", type=int, help=f"student epochs (default {d.epochs})")
    run.add_argument("--teacher-epochs", type=int, help=f"teacher epochs (default {d.teacher_epochs})")
    run.add_argument("--batch-size", type=int, help=f"training batch size (default {d.batch_size})")
    run.add_argument("--lr", type=float, help=f"peak learning rate of AdamW + one-cycle (default {d.lr:g})")
    run.add_argument("--device", help=f"auto (CUDA when available), cpu or cuda[:N] (default {d.device})")
    run.add_argument("--dry-run", action="store_true",
                     help="check everything and print the plan (each job: done, or to run; teacher cached or not); "
                          "train nothing")
    run.add_argument("--out", help="output directory (default results/<benchmark name>)")
    run.add_argument("--plugin", action="append", default=[], help="import a local plugin module (repeatable)")
    run.add_argument("--method-opt", action="append", default=[], metavar="METHOD.KEY=VALUE",
                     help="method hyper-parameter, e.g. hinton.T=2 (repeatable)")
    run.add_argument("--dataset-opt", action="append", default=[], metavar="DATASET.KEY=VALUE",
                     help="dataset option, e.g. synthetic.n_train=500 (repeatable)")
    run.add_argument("--plugin-opt", action="append", default=[], metavar="PLUGIN.KEY=VALUE",
                     help="plugin setting, e.g. mlflow.tracking_uri=file:./mlruns (repeatable)")
    run.add_argument("--teacher-checkpoint", help="use this state_dict as the teacher instead of training one")
    run.add_argument("--teacher-pretrained", action="store_true", default=None,
                     help="start the teacher from timm pretrained weights found offline (local cache), then train")
    run.add_argument("--data-root", help="folder with dataset files (MedMNIST npz); default ~/.medmnist")
    run.add_argument("--amp", action="store_true", default=None,
                     help="mixed precision on CUDA (bf16 where supported, else fp16 with a grad scaler)")
    run.add_argument("--augment", action="store_true", default=None,
                     help="light training augmentation: random flips and shifts of up to 1/16 of the side")
    run.add_argument("--teacher-augment", action="store_true", default=None,
                     help="the same augmentation for the teacher's training only (students keep the teacher-output "
                          "cache)")
    run.add_argument("--teacher-selection", choices=SELECTION_RULES,
                     help=f"validation score that picks the teacher's kept epoch (default {d.teacher_selection}; "
                          f"MedMNIST v2 uses auc, MedMNIST+ loss; for multilabel sets accuracy already means macro AUC)")
    run.add_argument("--xai-samples", type=int, help=f"test images per explanation evaluation (default {d.xai_samples})")
    run.add_argument("--xai-profile", choices=["default", "full"],
                     help=f"explanation metric profile (default {d.xai_profile}; full adds ROAD, IROF, ...)")
    run.add_argument("--featuremap-figures", action="store_true", default=None,
                     help="with the featuremaps explainer: save each model's per-stage maps as a figure")
    run.add_argument("--cache-dir", help="artifact store (default ~/.cache/kdbench or $KDBENCH_CACHE)")
    run.add_argument("--no-baseline", action="store_true", help="do not add the scratch baseline")
    run.add_argument("--force", action="store_true", help="re-run jobs that already have results")
    run.add_argument("--retry-failed", action="store_true", help="re-run jobs whose stored row says failed")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress bars or tables; for scripts")
    run.add_argument("--executor", choices=["local", "ray"], default="local",
                     help="local (in-process, default) or ray (pip install 'kdbench[ray]')")
    run.add_argument("--ray-address", help="Ray cluster to join: 'auto' or host:port (default: start a local one)")
    run.add_argument("--ray-cpus-per-task", type=int, default=1, help="CPUs each Ray task asks for (default 1)")

    plugins = sub.add_parser("plugins", help="list every registered component and who provides it")
    plugins.add_argument("--verbose", "-v", action="store_true", help="also show method defaults and sources")
    plugins.add_argument("--plugin", action="append", default=[], help="import a local plugin module")

    cache = sub.add_parser("cache", help="list or prune the artifact store (checkpoints and explanation maps)")
    cache.add_argument("action", choices=["ls", "prune"])
    cache.add_argument("--cache-dir", help="artifact store (default ~/.cache/kdbench or $KDBENCH_CACHE)")
    cache.add_argument("--older-than", type=float, metavar="DAYS", help="prune: also artifacts older than DAYS (>= 0)")
    cache.add_argument("--kind", choices=["teachers", "students", "maps", "featuremaps"], help="only this kind")
    cache.add_argument("--all", action="store_true", help="prune: every artifact of the store (nothing else)")

    lb = sub.add_parser("leaderboard", help="rebuild the leaderboard from stored rows")
    lb.add_argument("paths", nargs="+", help="output directories or runs.jsonl files")
    lb.add_argument("--out", help="where to write the tables (default: next to the first input)")
    lb.add_argument("--format", help="comma-separated formats: md, latex, html, csv, json (default: all)")
    lb.add_argument("--metrics", help="comma-separated metric columns to show, e.g. accuracy,auc,flops")
    lb.add_argument("--sort", help="order rows by this metric (its best first) or avg_rank")
    lb.add_argument("--no-plots", action="store_true", help="tables only")
    return p


def bench_from_args(args) -> Benchmark:
    from kdbench.report.session import resolve_config

    bench = load_toml(resolve_config(args.config)) if args.config else Benchmark()
    values = {k: getattr(args, k) for k in ("datasets", "teachers", "students", "methods", "explainers", "seeds",
                                             "fractions", "epochs", "teacher_epochs", "batch_size", "lr", "device",
                                             "teacher_checkpoint", "teacher_pretrained", "data_root", "augment",
                                             "teacher_augment", "teacher_selection", "amp", "featuremap_figures",
                                             "xai_samples", "xai_profile")
              if getattr(args, k) is not None}
    if args.no_baseline:
        values["baseline"] = False
    apply(bench, values, where="command line")
    for table, flag, items in (("method_options", "--method-opt", args.method_opt),
                               ("dataset_options", "--dataset-opt", args.dataset_opt),
                               ("plugin_settings", "--plugin-opt", args.plugin_opt)):
        for name, opts in parse_assignments(items, flag).items():
            getattr(bench, table).setdefault(name, {}).update(opts)
    return bench


def cmd_run(args, console: Console) -> int:
    from rich.markup import escape

    from kdbench.plugins import load_plugins
    from kdbench.report.session import run_benchmark
    from kdbench.run.progress import PlainReporter, Reporter, RichReporter
    from kdbench.run.runner import Runner
    from kdbench.run.store import ArtifactStore

    bench = bench_from_args(args)
    err = messages()
    plugins = load_plugins(args.plugin)
    for info in plugins.broken:
        warning = f"plugin {info.name} ({info.label}) failed to load: {info.error}"
        err.print(f"[yellow]warning:[/] {escape(warning)}")  # plugin text, not rich markup
    if args.ray_cpus_per_task < 1:  # was raised to 1 without a word
        raise ConfigError(f"--ray-cpus-per-task {args.ray_cpus_per_task} must be at least 1")
    if args.out is not None and not args.out.strip():
        raise ConfigError("--out is empty; give a folder for the results, e.g. --out results/mine")
    out = Path(args.out or Path("results") / bench.name)
    if args.quiet:
        reporter = Reporter(console)
    elif console.is_terminal:  # bars on stderr, tables on stdout
        reporter = RichReporter(Console(stderr=True, emoji=False))
    else:  # a file, a pipe, CI: one plain line per job as it finishes
        reporter = PlainReporter()
    if args.dry_run:
        return _dry_run(Runner(bench, plugins, out, store=ArtifactStore(args.cache_dir), force=args.force,
                               retry_failed=args.retry_failed), console)
    done = run_benchmark(bench, plugins, out, reporter=reporter, cache_dir=args.cache_dir, force=args.force,
                         retry_failed=args.retry_failed, executor=args.executor, ray_address=args.ray_address,
                         ray_cpus_per_task=args.ray_cpus_per_task, plugin_modules=args.plugin)
    summary, published = done.summary, done.published
    for w in summary.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}")  # plugin errors and runs.jsonl lines: not markup
    _report(published, console, quiet=args.quiet)
    for r in summary.rows:
        if r["status"] == "failed":
            what = f"{r['dataset']} {r['student']} {r['method']} seed={r['seed']}: {r['error']}"
            err.print(f"[red]failed:[/] {escape(what)}")
    counts = f"{len(summary.rows)} new rows, {summary.skipped} jobs already done, {summary.failed} failed"
    console.print(f"kdbench: results in {out}/ ({counts})", markup=False, highlight=False, soft_wrap=True)
    return 1 if summary.failed else 0


def _dry_run(runner, console: Console) -> int:
    """Print the plan: one line per job with what a run would do, and a count; nothing is trained or written."""
    plan = runner.plan()
    for job, state, teacher_cached in plan:
        teacher = "teacher cached" if teacher_cached else "teacher to train"
        console.print(f"{state:7s} {job.label} ({teacher}) {job.config_hash}", markup=False, highlight=False,
                      soft_wrap=True)
    todo = sum(state == "to run" for _, state, _ in plan)
    teachers = {(j.dataset, j.teacher, j.seed) for j, state, cached in plan if state == "to run" and not cached}
    console.print(f"dry run: {len(plan)} jobs, {todo} to run, {len(plan) - todo} done or failed; "
                  f"{len(teachers)} teachers to train; output {runner.out_dir}/ (nothing was written)",
                  markup=False, highlight=False, soft_wrap=True)
    return 0


def cmd_plugins(args, console: Console) -> int:
    from rich.markup import escape
    from rich.table import Table

    from kdbench.plugins import load_plugins
    from kdbench.registry import KINDS

    plugins = load_plugins(args.plugin)
    for kind in KINDS:
        reg = getattr(plugins, kind)
        table = Table(title=f"{kind} ({len(reg)})", title_justify="left")
        table.add_column("name")
        table.add_column("provided by")
        table.add_column("description")
        for c in reg:  # plugin-provided text, never rich markup (a '[/]' in a help line must not crash this)
            table.add_row(escape(c.name), escape(c.provider), escape(str(c.help)))
        console.print(table)
        if args.verbose and kind == "methods":
            for c in reg:
                defaults = ", ".join(f"{k}={v!r}" for k, v in getattr(c.obj, "defaults", {}).items()) or "none"
                console.print(f"[bold]{escape(c.name)}[/]\n  defaults: {escape(defaults)}\n  "
                              f"source:   {escape(str(getattr(c.obj, 'paper', '')))}", highlight=False)
    console.print("models: any timm model name also works as a teacher or student.")
    loaded = Table(title="plugin distributions (hook-only reporters included)", title_justify="left")
    for col in ("plugin", "from", "version", "hooks"):
        loaded.add_column(col)
    for info in plugins.infos.values():
        if info.source == "builtin":
            continue
        module = plugins.pm.get_plugin(info.name)
        callers = plugins.pm.get_hookcallers(module) if module is not None else None
        hooks = ", ".join(sorted(c.name for c in callers or [])) or "-"
        loaded.add_row(escape(info.name), escape(info.distribution or info.source), escape(info.version or "-"),
                       escape(hooks if not info.error else f"broken: {info.error}"))
    builtin = next((i for i in plugins.infos.values() if i.source == "builtin"), None)
    if builtin is not None:
        loaded.add_row("kdbench (built-in)", "kdbench", escape(builtin.version or "-"), "register_*")
    console.print(loaded)
    for info in plugins.broken:
        console.print(f"[red]broken plugin[/] {escape(f'{info.name} ({info.label}): {info.error}')}", highlight=False)
    return 0


def cmd_leaderboard(args, console: Console) -> int:
    from rich.markup import escape

    from kdbench.errors import ConfigError
    from kdbench.report.publish import publish
    from kdbench.report.render import FORMATS
    from kdbench.run.results import read_rows

    rows, skipped = [], 0
    for p in args.paths:
        path = Path(p)
        path = path / "runs.jsonl" if path.is_dir() else path
        if not path.is_file():
            raise ConfigError(f"{p}: no runs.jsonl there; give an output directory of `kdbench run` or a runs.jsonl")
        got, warnings = read_rows(path)
        rows += got
        skipped += len(warnings)
        for w in warnings:
            messages().print(f"[yellow]warning:[/] {escape(w)}", highlight=False)
    if not rows:
        why = f"all {skipped} lines were skipped (see the warnings above)" if skipped else "it is empty"
        raise ConfigError(f"no result rows in {', '.join(args.paths)}: {why}; "
                          f"give the output directory of a `kdbench run`")
    first = Path(args.paths[0])
    out = Path(args.out) if args.out else first if first.is_dir() else first.parent
    # --format '' is no format (publish refuses it), not every format
    formats = [f.strip() for f in args.format.split(",") if f.strip()] if args.format is not None else list(FORMATS)
    failed = sum(r.get("status") == "failed" for r in rows)
    if failed == len(rows):  # the tables come out empty: say why instead of nothing
        messages().print(f"warning: every one of the {failed} rows in {', '.join(args.paths)} is a failed job, so "
                         f"the tables are empty; their errors are in runs.jsonl (re-run with --retry-failed)",
                         markup=False, highlight=False)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    try:
        published = publish(rows, out, formats=formats, metrics=metrics, sort=args.sort, plots=not args.no_plots)
    except OSError as exc:  # e.g. --out inside a read-only folder
        raise storage_failure(exc) or ConfigError(f"cannot write the leaderboard to {out}: {exc.strerror or exc}; "
                                                  f"choose another --out") from None
    _report(published, console)
    return 0


def cmd_cache(args, console: Console) -> int:
    from datetime import datetime

    from rich.markup import escape
    from rich.table import Table

    from kdbench.report.render import human
    from kdbench.run.store import ArtifactStore

    store = ArtifactStore(args.cache_dir)
    if args.action == "prune":  # refuses a folder that is not a kdbench store; touches only the store's own files
        removed = store.prune(older_than_days=args.older_than, kind=args.kind, everything=args.all)
        console.print(f"removed {len(removed)} files from {store.root}", markup=False, highlight=False)
        return 0
    store.check_root()
    table = Table(title=f"artifacts in {escape(str(store.root))}", title_justify="left")
    for col in ("kind", "key", "size", "saved", "checksum", "what"):
        table.add_column(col)
    for a in store.entries():
        if args.kind and a.kind != args.kind:
            continue
        settings = a.meta.get("settings")
        settings = settings if isinstance(settings, dict) else {}
        what = a.meta.get("job") or " ".join(str(settings.get(k, "")) for k in ("dataset", "teacher", "seed"))
        table.add_row(a.kind, escape(a.key), human(a.size) + "B",
                      datetime.fromtimestamp(a.mtime).strftime("%Y-%m-%d %H:%M"),
                      "ok" if a.ok else "[red]corrupt[/]", escape(str(what)))
    console.print(table)
    return 0


def _report(published, console: Console, quiet: bool = False) -> None:
    """Warnings on stderr; the tables on stdout: rich on a terminal, full-width Markdown text elsewhere."""
    from rich.markup import escape

    err = messages()
    for c in published.conflicts + published.warnings:  # they quote names from runs.jsonl: not markup
        err.print(f"[yellow]warning:[/] {escape(c)}", highlight=False)
    if quiet:
        return
    from kdbench.report.render import rich_tables, to_markdown

    if console.is_terminal:
        for t in rich_tables(published.tables):
            console.print(t)
    elif published.tables:  # a log or a pipe: never cut to 80 columns
        console.print(to_markdown(published.tables), markup=False, highlight=False, soft_wrap=True)
    names = ", ".join(p.name for p in published.paths)
    console.print(f"wrote {len(published.paths)} files: {names}", markup=False, highlight=False, soft_wrap=True)


def _one_line_warning(fallback):
    """A ``warnings.formatwarning`` that writes kdbench's own warnings (a corrupt cache entry being
    rebuilt) as one ``warning:`` line, like the others; Python's format added the file, line number
    and source line of kdbench's code. Others keep Python's format; recording them (pytest.warns) is
    untouched, since only the text is formatted here."""
    def format_warning(message, category, filename, lineno, line=None):
        if Path(filename).resolve().is_relative_to(Path(__file__).resolve().parent):
            return f"warning: {message}\n"
        return fallback(message, category, filename, lineno, line)
    return format_warning


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(emoji=False)
    err = messages()
    previous = interrupts.install()
    format_warning = warnings.formatwarning
    warnings.formatwarning = _one_line_warning(format_warning)
    try:
        handler = {"run": cmd_run, "plugins": cmd_plugins, "leaderboard": cmd_leaderboard,
                   "cache": cmd_cache}[args.command]
        return handler(args, console)
    except KdbenchError as exc:
        message = " ".join(str(exc).splitlines())  # one line, whatever the message embeds
        err.print(f"kdbench: error: {message}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("kdbench: interrupted; finished results are kept; run the same command again to resume",
                  markup=False, highlight=False, soft_wrap=True)
        return 130
    finally:
        interrupts.restore(previous)
        warnings.formatwarning = format_warning


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
