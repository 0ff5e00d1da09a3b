"""Running a plan: one row per result, appended by this process alone.

Datasets are loaded once per run and kept in memory; each teacher is trained once per
(dataset, teacher, seed) and cached on disk by the artifact store; a job that raises is
recorded as a failed row and the run goes on. Jobs run here one after the other (the
local executor) or as Ray tasks (:mod:`kdbench.ray_executor`), which reuse this class's
teacher and job steps.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path


from . import interrupts
from .config import Benchmark
from .data import DatasetBundle, fraction_indices
from .datasets.loading import load_dataset
from .errors import ConfigError, KdbenchError
from .explain import FIGURE_IMAGES, explain_model, xai_subset
from .figures import file_stem
from .evaluate import count_flops, cpu_latency_ms, predict_logits, predictive_metrics, probabilities
from .models import count_params, create_model, load_checkpoint
from .lock import RunLock
from .methods.scratch import Scratch
from .plan import Job, make_plan, teacher_settings
from .plugins import Plugins
from .preflight import preflight, resolve_device, validate
from .progress import Reporter
from .results import RunsWriter, TrainingLog, finished_hashes, latest_rows, now, read_rows, versions
from .store import ArtifactStore, content_hash
from .training import TrainConfig, fit, freeze, seed_everything


@dataclass
class TeacherResult:
    model: object
    trained_now: bool
    rows: list[dict]


class _WriteError(KdbenchError):
    """runs.jsonl cannot be written: stop the run (exit 2); it is not a job's fault."""


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
        self.bench = bench
        self.plugins = plugins
        self.out_dir = Path(out_dir)
        self.store = store or ArtifactStore()
        self.reporter = reporter or Reporter()
        self.force = force
        self.retry_failed = retry_failed
        if executor not in ("local", "ray"):
            raise ConfigError(f"--executor {executor!r} is not known; use local or ray")
        self.executor = executor
        self.ray_address = ray_address
        self.ray_cpus_per_task = ray_cpus_per_task
        self.plugin_modules = list(plugin_modules)
        self.device = resolve_device(bench.device)
        self.writer = RunsWriter(self.out_dir / "runs.jsonl")
        self.versions = versions()
        self._datasets: dict[str, DatasetBundle] = {}
        self.explainers = [plugins.explainers.get(n) for n in bench.explainers]
        self.xai_metrics = [c.obj for c in plugins.metrics if c.obj.profile in ("default", bench.xai_profile)]

    # -- the run -------------------------------------------------------------------
    def run(self) -> RunSummary:
        validate(self.bench, self.plugins)
        for spec in self.bench.datasets:  # bad data is bad input: refuse before any training
            self._dataset(spec)
        preflight(self.bench, self.plugins, self._datasets)
        lock = RunLock(self.out_dir).acquire()
        try:
            return self._run(lock)
        finally:
            lock.release()

    def _run(self, lock: RunLock) -> RunSummary:
        jobs = make_plan(self.bench)
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
            from .ray_executor import run_on_ray

            run_on_ray(self, todo, summary, existing)
        else:
            self._run_local(todo, summary, existing)
        summary.failed = sum(1 for r in summary.rows if r["status"] == "failed")
        return summary

    def _run_local(self, todo: list[Job], summary: RunSummary, existing: list[dict]) -> None:
        teachers: dict[tuple, object] = {}
        for job in todo:
            interrupts.check()
            self.reporter.job(job.label, self.bench.epochs)
            key = (job.dataset, job.teacher, job.seed)
            try:
                if key not in teachers:  # the teacher also gives the leaderboard its reference row
                    done = {r["config_hash"] for r in existing + summary.rows if r.get("status") == "ok"}
                    result = self.teacher(job, self._dataset(job.dataset), done)
                    summary.teachers_trained += result.trained_now
                    for r in result.rows:
                        self._emit(r, summary)
                    teachers[key] = result.model
                rows = self.job_rows(job, teachers[key])
            except KdbenchError as exc:
                if isinstance(exc, _WriteError):
                    raise
                rows = [self.failed_row(job, exc)]
            except Exception as exc:  # isolation: one failing teacher never stops the others
                rows = [self.failed_row(job, exc)]
            for r in rows:
                self._emit(r, summary)
            self.reporter.job_done(rows[0]["status"])
        interrupts.check()

    def job_rows(self, job: Job, teacher) -> list[dict]:
        """The rows of one student job; an exception becomes a failed row (isolation)."""
        try:
            return self._run_job(job, self._dataset(job.dataset), teacher)
        except Exception as exc:  # one failing job never stops the others
            return [self.failed_row(job, exc)]

    def failed_row(self, job: Job, exc: BaseException) -> dict:
        message = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, KdbenchError) and exc.__traceback__ is not None:
            last = traceback.extract_tb(exc.__traceback__)[-1]
            message += f" at {Path(last.filename).name}:{last.lineno}"
        return dict(self._base_row(job), status="failed", error=message)

    def _emit(self, row: dict, summary: RunSummary) -> None:
        try:
            self.writer.append(row)
        except OSError as exc:
            raise _WriteError(f"cannot write results to {self.writer.path}: {exc.strerror or exc}; the rows written "
                               f"before are kept, free space or fix permissions and run again to resume") from None
        summary.rows.append(row)
        summary.warnings.extend(self.plugins.notify_result(row))

    # -- pieces --------------------------------------------------------------------
    def _base_row(self, job: Job) -> dict:
        return {
            "kind": "predictive", "dataset": job.dataset, "teacher": job.teacher, "student": job.student,
            "method": job.method, "seed": job.seed, "fraction": job.fraction, "explainer": None,
            "status": "ok", "error": None, "config_hash": job.config_hash, "epochs": self.bench.epochs,
            "method_options": dict(job.options), "device": self.device, "timestamp": now(), **self.versions,
        }

    def _dataset(self, spec: str) -> DatasetBundle:
        if spec not in self._datasets:
            self._datasets[spec] = load_dataset(spec, self.bench, self.plugins)
        return self._datasets[spec]

    def teacher(self, job: Job, bundle: DatasetBundle, done_hashes: set[str]) -> "TeacherResult":
        """Train (or load from the cache) the teacher of this dataset and seed.

        Its reference rows (predictive and explanation) are returned unless ``done_hashes``
        already holds its config hash; the caller writes them.
        """
        info = bundle.info
        settings = teacher_settings(self.bench, job.dataset, job.teacher, job.seed)
        key = content_hash(settings)
        seed_everything(job.seed)
        model = create_model(job.teacher, self.plugins.models, num_classes=info.num_classes,
                             in_chans=info.in_chans, image_size=info.image_size,
                             pretrained=self.bench.teacher_pretrained and not self.bench.teacher_checkpoint)
        trained_now, seconds = False, 0.0
        if self.bench.teacher_checkpoint:
            load_checkpoint(model, self.bench.teacher_checkpoint)
        else:
            cached = self.store.load("teachers", key)
            if cached is not None:
                model.load_state_dict(cached[0])
            else:
                self.reporter.job(f"teacher {job.teacher} on {job.dataset} seed={job.seed}", self.bench.teacher_epochs)
                trainer = Scratch(model, None, info)
                cfg = TrainConfig(epochs=self.bench.teacher_epochs, batch_size=self.bench.batch_size,
                                  lr=self.bench.lr, device=self.device, seed=job.seed, augment=self.bench.augment,
                              amp=self.bench.amp)
                log = TrainingLog(self.out_dir / "logs" / f"teacher-{key}.jsonl")
                result = fit(trainer, bundle.train, bundle.val, cfg,
                             on_epoch=lambda e, r: (self.reporter.epoch(e + 1, r), log.write(r)))
                seconds = result.seconds
                self.store.save("teachers", key, model.state_dict(),
                                {"settings": settings, "best_epoch": result.best_epoch, "val": result.best_val})
                trained_now = True
                self.reporter.job(job.label, self.bench.epochs)
        model = freeze(model.to(self.device))
        rows = []
        if key not in done_hashes:
            row = dict(self._base_row(job), method="teacher", student=job.teacher, fraction=1.0, config_hash=key,
                       epochs=self.bench.teacher_epochs, method_options={}, teacher_cached=not trained_now)
            row.update(self._evaluate(model, bundle, info.task))
            row["train_seconds"] = seconds
            row["checkpoint"] = self.bench.teacher_checkpoint or str(self.store.paths("teachers", key)[0])
            rows = [row] + self._explain(model, bundle, row, f"teacher {job.teacher}")
        return TeacherResult(model, trained_now, rows)

    def _evaluate(self, model, bundle: DatasetBundle, task: str) -> dict:
        logits = predict_logits(model, bundle.test.x, device=self.device)
        metrics = predictive_metrics(probabilities(logits, task), bundle.test.y.numpy(), task)
        example = bundle.test.x[:1]
        metrics["params"] = count_params(model)
        metrics["flops"] = count_flops(model, example.to(self.device))
        metrics["latency_ms"] = cpu_latency_ms(model, example)
        return metrics

    def _run_job(self, job: Job, bundle: DatasetBundle, teacher) -> list[dict]:
        info = bundle.info
        seed_everything(job.seed)
        student = create_model(job.student, self.plugins.models, num_classes=info.num_classes,
                               in_chans=info.in_chans, image_size=info.image_size)
        cls = self.plugins.methods.get(job.method).obj
        method = cls(student, teacher if cls.uses_teacher else None, info, **job.options)
        try:
            idx = fraction_indices(bundle.train.y, info.task, job.fraction, job.seed)
            cfg = TrainConfig(epochs=self.bench.epochs, batch_size=self.bench.batch_size, lr=self.bench.lr,
                              device=self.device, seed=job.seed, augment=self.bench.augment,
                              amp=self.bench.amp)
            log = TrainingLog(self.out_dir / "logs" / f"{job.config_hash}.jsonl")
            result = fit(method, bundle.train.subset(idx), bundle.val, cfg,
                         on_epoch=lambda e, r: (self.reporter.epoch(e + 1, r), log.write(r)))
        finally:
            method.release()
        model = method.deployable().eval()
        checkpoint = self.store.save("students", job.config_hash, model.state_dict(),
                                     {"job": job.label, "best_epoch": result.best_epoch})
        row = self._base_row(job)
        row["checkpoint"] = str(checkpoint)
        row.update(self._evaluate(model, bundle, info.task))
        row.update(train_seconds=result.seconds, best_epoch=result.best_epoch, train_images=len(idx))
        label = f"{job.student} {job.method}" + (f" f={job.fraction:g}" if len(self.bench.fractions) > 1 else "")
        return [row] + self._explain(model, bundle, row, label, first_seed=job.seed == self.bench.seeds[0])

    def _explain(self, model, bundle: DatasetBundle, row: dict, label: str, first_seed: bool = True) -> list[dict]:
        """Explanation rows of one model; its maps are stored for the figure (first seed only)."""
        if not self.explainers:
            return []
        self.reporter.note(f"  explaining {label} with {', '.join(c.name for c in self.explainers)}")
        done = explain_model(model, bundle, self.explainers, self.xai_metrics, self.bench.xai_samples, self.device)
        if first_seed:
            if done.maps:  # kept with the checkpoints, so any later run can redraw the whole figure
                self.store.save_arrays("maps", row["config_hash"], done.maps)
            if self.bench.featuremap_figures and "featuremaps" in self.bench.explainers:
                from .explainers.featuremaps import save_featuremap_figure

                idx = xai_subset(bundle, self.bench.xai_samples)[:FIGURE_IMAGES]
                name = file_stem(f"featuremaps_{row['dataset']}_{row['student']}_{row['method']}_{row['fraction']:g}")
                save_featuremap_figure(model, bundle.test.x[idx].to(self.device), self.out_dir / f"{name}.png")
        keep = {k: row[k] for k in self._base_row_keys}
        return [dict(keep, **r) for r in done.rows]

    _base_row_keys = ("dataset", "teacher", "student", "method", "seed", "fraction", "config_hash", "epochs",
                      "device", "timestamp", "kdbench_version", "torch_version", "timm_version", "quantus_version",
                      "captum_version", "python_version")

    def write_figures(self) -> list[Path]:
        """One explanation figure per dataset: the teacher and every full-data student of the first seed.

        Built from runs.jsonl and the maps in the artifact store, so a resumed or fully
        cached run draws the same complete figure as an uninterrupted one. Only the
        largest fraction is drawn: the less-data students are in the tables, and one row
        per model is what keeps a benchmark's figure readable.
        """
        from .figures import model_explainer_grid

        rows, _ = read_rows(self.writer.path)
        seed, fraction = self.bench.seeds[0], max(self.bench.fractions)
        paths = []
        for spec in self.bench.datasets:
            models = [r for r in latest_rows(rows)  # one predictive row per config hash
                      if r.get("kind", "predictive") == "predictive" and r.get("status") == "ok"
                      and r["dataset"] == spec and r["seed"] == seed and r["fraction"] == fraction]
            models.sort(key=lambda r: ({"teacher": 0}.get(r["method"], 1), r["student"],
                                       {"scratch": 0}.get(r["method"], 1)))
            drawn = []
            for r in models:
                maps = self.store.load_arrays("maps", r["config_hash"]) or {}
                label = f"teacher {r['teacher']}" if r["method"] == "teacher" else f"{r['student']}\n{r['method']}"
                if any(name in maps for name in self.bench.explainers):
                    drawn.append((label, maps))
            if not drawn:
                continue
            explainers = [e for e in self.bench.explainers if any(e in maps for _, maps in drawn)]
            bundle = self._dataset(spec)
            idx = xai_subset(bundle, self.bench.xai_samples)[:FIGURE_IMAGES]
            masks = bundle.test.masks[idx].numpy() if bundle.test.masks is not None else None
            name = file_stem(spec)
            title = f"{spec}, seed {seed}" + (f", fraction {fraction:g}" if len(self.bench.fractions) > 1 else "")
            paths.append(model_explainer_grid(bundle.test.x[idx].numpy(), masks, drawn, explainers,
                                              self.out_dir / f"explanations_{name}.png", title=title))
        return paths
