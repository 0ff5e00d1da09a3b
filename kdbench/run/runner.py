"""Running a plan: check, lock, skip what is done, run the jobs, write every row once.

The run is a short sequence: validate names and options, load every dataset and run the
pre-flight checks (bad input costs nothing), take the output folder's lock, read the
rows already there (a re-run skips finished jobs, a killed run resumes), then hand the
remaining jobs to an executor: here, one after the other (local), or as Ray tasks
(:mod:`kdbench.run.ray_executor`). Both executors run the same
:class:`~kdbench.run.steps.JobSteps`; this process stays the single writer of
runs.jsonl. A job that raises is a failed row and the run goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kdbench.config.benchmark import Benchmark
from kdbench.config.plan import Job, make_plan, method_code_versions
from kdbench.config.preflight import preflight, validate
from kdbench.config.record import write_benchmark_toml
from kdbench.errors import ConfigError, KdbenchError, StorageError, storage_failure
from kdbench.plugins import Plugins
from kdbench.run import interrupts
from kdbench.run.lock import RunLock
from kdbench.run.outdir import refuse_links_inside, refuse_unusable_out
from kdbench.run.progress import Reporter
from kdbench.run.results import RunsWriter, finished_hashes, read_rows
from kdbench.run.steps import JobSteps
from kdbench.run.store import ArtifactStore


class TeacherFailedError(KdbenchError):
    """A job's teacher failed earlier in this run: the job is failed without training it again."""


@dataclass
class RunSummary:
    out_dir: Path
    rows: list[dict] = field(default_factory=list)
    skipped: int = 0
    failed: int = 0
    teachers_trained: int = 0
    warnings: list[str] = field(default_factory=list)


class Runner:
    """Runs one benchmark into ``out_dir``; the single writer of its runs.jsonl."""

    def __init__(self, bench: Benchmark, plugins: Plugins, out_dir: str | Path, *,
                 store: ArtifactStore | None = None, reporter: Reporter | None = None,
                 force: bool = False, retry_failed: bool = False, executor: str = "local",
                 ray_address: str | None = None, ray_cpus_per_task: int = 1, plugin_modules=()):
        if executor not in ("local", "ray"):
            raise ConfigError(f"--executor {executor!r} is not known; use local or ray")
        self.bench = bench
        self.plugins = plugins
        self.out_dir = Path(out_dir)
        self.reporter = reporter or Reporter()
        self.steps = JobSteps(bench, plugins, self.out_dir, store, self.reporter)
        self.force = force
        self.retry_failed = retry_failed
        self.executor = executor
        self.ray_address = ray_address
        self.ray_cpus_per_task = ray_cpus_per_task
        self.plugin_modules = list(plugin_modules)
        self.writer = RunsWriter(self.out_dir / "runs.jsonl")

    @property
    def store(self) -> ArtifactStore:
        return self.steps.store

    @property
    def device(self) -> str:
        return self.steps.device

    def run(self) -> RunSummary:
        validate(self.bench, self.plugins)
        for spec in self.bench.datasets:  # bad data is bad input: refuse before any training
            self.steps.dataset(spec)
        preflight(self.bench, self.plugins, self.steps.datasets)
        refuse_links_inside(self.out_dir)
        lock = RunLock(self.out_dir).acquire()
        try:
            write_benchmark_toml(self.bench, self.out_dir)  # `kdbench run --config OUT/benchmark.toml` resumes it
            return self._run(lock)
        finally:
            lock.release()

    def plan(self) -> list[tuple[Job, str, bool]]:
        """Every job with what a run would do with it, checking everything and training nothing (``--dry-run``).

        Returns ``(job, state, teacher_cached)``: state ``done``, ``failed`` (skipped unless
        --retry-failed) or ``to run``; whether its teacher is already in the artifact store.
        Nothing is written, not even the lock.
        """
        validate(self.bench, self.plugins)
        for spec in self.bench.datasets:
            self.steps.dataset(spec)
        preflight(self.bench, self.plugins, self.steps.datasets)
        refuse_unusable_out(self.out_dir)
        refuse_links_inside(self.out_dir)
        jobs = self._jobs()
        existing, _ = read_rows(self.writer.path) if self.writer.path.exists() else ([], [])  # unreadable: as a run
        ok = set() if self.force else finished_hashes(existing, include_failed=False)
        failed = set() if self.force or self.retry_failed else finished_hashes(existing, include_failed=True) - ok
        out = []
        for job in jobs:
            state = "done" if job.config_hash in ok else "failed" if job.config_hash in failed else "to run"
            out.append((job, state, self.steps.teacher_cached(job)))
        return out

    def _jobs(self) -> list[Job]:
        """Every job with its identity; ``--dry-run`` and a run must compute it the same way, so here once."""
        return make_plan(self.bench, self.steps.fingerprints(), method_code_versions(self.plugins))

    def _run(self, lock: RunLock) -> RunSummary:
        jobs = self._jobs()
        existing, warnings = read_rows(self.writer.path)
        done = set() if self.force else finished_hashes(existing, include_failed=not self.retry_failed)
        summary = RunSummary(self.out_dir, warnings=list(warnings) + ([lock.stale_warning] if lock.stale_warning else []))
        todo = [j for j in jobs if j.config_hash not in done]
        summary.skipped = len(jobs) - len(todo)
        if summary.skipped:
            self.reporter.note(f"resuming: {summary.skipped} of {len(jobs)} jobs already have results in "
                               f"{self.writer.path}")
        summary.warnings += self.plugins.notify("on_run_start", settings=dict(self.bench.plugin_settings),
                                                out_dir=self.out_dir)
        self.reporter.start(len(todo))
        if self.executor == "ray":
            from kdbench.run.ray_executor import run_on_ray

            run_on_ray(self, todo, summary, existing)
        else:
            self._run_local(todo, summary, existing)
        summary.failed = sum(1 for r in summary.rows if r["status"] == "failed")
        return summary

    def _run_local(self, todo: list[Job], summary: RunSummary, existing: list[dict]) -> None:
        """The local executor: jobs one after the other, each teacher trained or loaded once.

        A teacher that fails is tried once: its other jobs become failed rows that name
        the teacher's error instead of training it again for each of them.
        """
        teachers: dict[tuple, object] = {}
        teacher_errors: dict[tuple, str] = {}
        for job in todo:
            interrupts.check()
            self.reporter.job(job.label, self.bench.epochs)
            key = (job.dataset, job.teacher, job.seed)
            try:
                if key in teacher_errors:
                    raise TeacherFailedError(teacher_errors[key])
                if key not in teachers:  # the teacher also gives the leaderboard its reference row
                    done = {r["config_hash"] for r in existing + summary.rows if r.get("status") == "ok"}
                    try:
                        result = self.steps.teacher(job, self.steps.dataset(job.dataset), done)
                    except Exception as exc:
                        if storage_failure(exc) is None:
                            failed = self.steps.failed_row(job, exc)["error"]
                            teacher_errors[key] = f"teacher {job.teacher} on {job.dataset} seed={job.seed} " \
                                                  f"failed: {failed}"
                            # the first student's row names the teacher too: it did not fail itself
                            raise TeacherFailedError(teacher_errors[key]) from exc
                        raise
                    summary.teachers_trained += result.trained_now
                    self.emit(result.rows, summary)
                    teachers[key] = result.model
                rows = self.steps.job_rows(job, teachers[key])
            except StorageError:
                raise
            except Exception as exc:  # isolation: one failing teacher never stops the others
                disk = storage_failure(exc)
                if disk is not None:  # the disk, not the job: stop the run, record nothing as failed
                    raise disk from None
                rows = [self.steps.failed_row(job, exc)]
            self.emit(rows, summary)
            self.reporter.job_done(rows)
        interrupts.check()

    def emit(self, rows: list[dict], summary: RunSummary) -> None:
        """Append one job's rows to runs.jsonl together (the only writer), then tell the reporter plugins."""
        try:
            self.writer.append_many(rows)
        except OSError as exc:
            raise StorageError(f"cannot write results to {self.writer.path}: {exc.strerror or exc}; the rows written "
                               f"before are kept, free space or fix permissions and run again to resume") from None
        summary.rows.extend(rows)
        self.reporter.rows_written(rows)
        for row in rows:
            summary.warnings.extend(self.plugins.notify_result(row))
