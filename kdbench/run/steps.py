"""The stages of one job, shared by both executors: dataset -> teacher -> distil -> evaluate -> explain -> rows.

:class:`JobSteps` holds what a benchmark's jobs share (datasets in memory, plugins, the
artifact store, the device) and turns one planned job into its result rows. The local
executor (:mod:`kdbench.run.runner`) calls it in-process; the Ray executor
(:mod:`kdbench.run.ray_executor`) builds one per worker. Neither executor imports the
other. A job that raises becomes a failed row (isolation); writing rows is the
executor's business, never a step's.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from kdbench.config.benchmark import Benchmark
from kdbench.config.identity import content_hash
from kdbench.config.plan import Job, teacher_settings
from kdbench.config.preflight import resolve_device
from kdbench.config.record import row_settings
from kdbench.data.contract import DatasetBundle, fraction_indices
from kdbench.distill.dead_taps import full_kernels
from kdbench.distill.methods.scratch import Scratch
from kdbench.distill.models import (
    count_params,
    create_model,
    load_checkpoint,
    memory_format_for,
)
from kdbench.distill.teacher_cache import TeacherOutputCache
from kdbench.distill.training import TrainConfig, fit, freeze, seed_everything
from kdbench.errors import ConfigError, KdbenchError, storage_failure
from kdbench.evaluate.auc_influence import macro_auc_influence
from kdbench.evaluate.fidelity import (
    class_metrics,
    encode_correct,
    encode_scores,
    expected_calibration_error,
    teacher_agreement,
)
from kdbench.evaluate.predictive import (
    count_flops,
    cpu_latency,
    predict_logits,
    predictive_metrics,
    probabilities,
)
from kdbench.explain.agreement import explanation_agreement, gradcam_at_input
from kdbench.explain.explainers.featuremaps import stage_maps
from kdbench.explain.scoring import FIGURE_IMAGES, explain_model, xai_subset
from kdbench.plugins import Plugins
from kdbench.run.loading import load_dataset
from kdbench.run.progress import Reporter
from kdbench.run.results import TrainingLog, now, versions
from kdbench.run.store import ArtifactStore

BASE_ROW_KEYS = ("dataset", "teacher", "student", "method", "seed", "fraction", "config_hash", "epochs",
                      "device", "timestamp", "kdbench_version", "torch_version", "timm_version", "quantus_version",
                      "captum_version", "python_version")


def teacher_train_config(bench: Benchmark, seed: int, device: str) -> TrainConfig:
    """How a benchmark trains its teachers; ``benchmarks/teacher_selection.py`` trains them the same way."""
    return TrainConfig(epochs=bench.teacher_epochs, batch_size=bench.batch_size, lr=bench.lr, device=device,
                       seed=seed, augment=bench.augment or bench.teacher_augment, amp=bench.amp,
                       selection=bench.teacher_selection)


def check_state_dict_file(path: str | Path, what: str = "teacher") -> None:
    """Refuse a checkpoint file that is not a state_dict: unreadable, or a tensor, list or dict of non-tensors.

    ``torch.load(weights_only=True)`` reads all of those; ``load_state_dict`` then fails with
    a TypeError or AttributeError rather than saying what is wrong. A missing file is left
    to :func:`~kdbench.config.preflight.validate`, which names it.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        return
    hint = "save model.state_dict() with torch.save"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"{what} checkpoint {path} cannot be read ({type(exc).__name__}); it must be a "
                          f"state_dict: {hint}") from None
    if isinstance(state, Mapping) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ConfigError(f"{what} checkpoint {path} holds a {type(state).__name__} object, not a state_dict; "
                          f"{hint}")
    for key, value in state.items():
        if not isinstance(key, str):
            raise ConfigError(f"{what} checkpoint {path} is not a state_dict: it has a key {key!r} that is not "
                              f"a parameter name; {hint}")
        if not isinstance(value, torch.Tensor) and not key.endswith("_extra_state"):
            raise ConfigError(f"{what} checkpoint {path} is not a state_dict: {key!r} holds a "
                              f"{type(value).__name__} object, not a tensor; {hint}")


def efficiency(model, example, device) -> dict:
    """Parameters, FLOPs and batch-1 CPU latency of the architecture as any other framework runs it.

    kdbench's convolutions skip kernel taps that only see zero padding (same numbers, faster
    on CPU: :mod:`kdbench.distill.dead_taps`); FLOPs and latency count every tap, as the
    architecture runs anywhere else (FLOPs at 2 per multiply-add: fvcore and thop report
    multiply-adds, half these figures).
    """
    with full_kernels():
        latency, iqr = cpu_latency(model, example, memory_format=memory_format_for(model, "cpu"))
        return {"params": count_params(model), "flops": count_flops(model, example.to(device)),
                "latency_ms": latency, "latency_iqr_ms": iqr, "latency_threads": torch.get_num_threads()}


@dataclass
class TeacherResult:
    model: object
    trained_now: bool
    rows: list[dict]


class JobSteps:
    """Everything a job needs, and the job itself as a short sequence of stage calls."""

    def __init__(self, bench: Benchmark, plugins: Plugins, out_dir: str | Path, store: ArtifactStore | None = None,
                 reporter: Reporter | None = None):
        self.bench = bench
        self.plugins = plugins
        self.out_dir = Path(out_dir)
        self.store = store or ArtifactStore()
        self.reporter = reporter or Reporter()
        self.device = resolve_device(bench.device)
        if bench.teacher_checkpoint:  # a file that holds no state_dict is bad input, refused before pre-flight
            check_state_dict_file(bench.teacher_checkpoint)
        self.versions = versions()
        self.datasets: dict[str, DatasetBundle] = {}
        self.explainers = [plugins.explainers.get(n) for n in bench.explainers]
        self.xai_metrics = [c.obj for c in plugins.metrics if c.obj.profile in ("default", bench.xai_profile)]
        self.teacher_cache = TeacherOutputCache()  # teacher outputs shared by the jobs of one teacher
        self._teacher_refs: dict[tuple, dict] = {}  # the current teacher's test logits and Grad-CAM

    def dataset(self, spec: str) -> DatasetBundle:
        if spec not in self.datasets:
            self.datasets[spec] = load_dataset(spec, self.bench, self.plugins)
        return self.datasets[spec]

    def fingerprints(self) -> dict[str, str]:
        """Each loaded dataset's content fingerprint, for the plan's job identities."""
        return {spec: bundle.fingerprint for spec, bundle in self.datasets.items()}

    def job_rows(self, job: Job, teacher) -> list[dict]:
        """The rows of one student job; an exception becomes a failed row (isolation)."""
        try:
            return self.student_job(job, self.dataset(job.dataset), teacher)
        except Exception as exc:  # one failing job never stops the others
            disk = storage_failure(exc)
            if disk is not None:  # a full disk is not the job's fault: stop, never record it as failed
                raise disk from None
            return [self.failed_row(job, exc)]

    def failed_row(self, job: Job, exc: BaseException) -> dict:
        message = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, KdbenchError) and exc.__traceback__ is not None:
            last = traceback.extract_tb(exc.__traceback__)[-1]
            message += f" at {Path(last.filename).name}:{last.lineno}"
        return dict(self.base_row(job), status="failed", error=message)

    def base_row(self, job: Job) -> dict:
        """The identity of a job's rows: the columns every row of it carries."""
        return {
            "kind": "predictive", "dataset": job.dataset, "teacher": job.teacher, "student": job.student,
            "method": job.method, "seed": job.seed, "fraction": job.fraction, "explainer": None,
            "status": "ok", "error": None, "config_hash": job.config_hash, "epochs": self.bench.epochs,
            "method_options": dict(job.options), **row_settings(self.bench, job.dataset), "device": self.device,
            "timestamp": now(), **self.versions,
        }

    def teacher_settings(self, job: Job) -> dict:
        """What determines this job's teacher, the loaded data's fingerprint included."""
        return teacher_settings(self.bench, job.dataset, job.teacher, job.seed, self.dataset(job.dataset).fingerprint)

    def teacher_key(self, job: Job) -> str:
        """The artifact key of this job's teacher."""
        return content_hash(self.teacher_settings(job))

    def teacher_cached(self, job: Job) -> bool:
        """Whether this job's teacher is a given checkpoint or already in the artifact store."""
        return bool(self.bench.teacher_checkpoint) or self.store.paths("teachers", self.teacher_key(job))[0].is_file()

    def teacher(self, job: Job, bundle: DatasetBundle, done_hashes: set[str]) -> "TeacherResult":
        """Train (or load from the cache) the teacher of this dataset and seed.

        Its reference rows (predictive and explanation) are returned unless ``done_hashes``
        already holds its config hash; the caller writes them.
        """
        info = bundle.info
        settings = self.teacher_settings(job)
        key = content_hash(settings)
        seed_everything(job.seed)
        model = create_model(job.teacher, self.plugins.models, num_classes=info.num_classes,
                             in_chans=info.in_chans, image_size=info.image_size,
                             pretrained=self.bench.teacher_pretrained and not self.bench.teacher_checkpoint)
        trained_now, seconds = False, 0.0
        if self.bench.teacher_checkpoint:
            load_checkpoint(model, Path(self.bench.teacher_checkpoint).expanduser())
        else:
            cached = self.store.load("teachers", key)
            if cached is not None:
                model.load_state_dict(cached[0])
            else:
                self.reporter.job(f"teacher {job.teacher} on {job.dataset} seed={job.seed}", self.bench.teacher_epochs)
                trainer = Scratch(model, None, info)
                cfg = teacher_train_config(self.bench, job.seed, self.device)
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
            row = dict(self.base_row(job), method="teacher", student=job.teacher, fraction=1.0, config_hash=key,
                       epochs=self.bench.teacher_epochs, method_options={}, teacher_cached=not trained_now)
            row.update(self.evaluate(model, bundle, info.task))
            row["train_seconds"] = seconds
            row["checkpoint"] = self.bench.teacher_checkpoint or str(self.store.paths("teachers", key)[0])
            rows = [row] + self.explain(model, bundle, row, f"teacher {job.teacher}")
        return TeacherResult(model, trained_now, rows)

    def evaluate(self, model, bundle: DatasetBundle, task: str, teacher=None) -> dict:
        """Predictive, calibration and efficiency columns; with ``teacher``, agreement with it too."""
        model = model.to(memory_format=memory_format_for(model, self.device))  # as trained
        logits = predict_logits(model, bundle.test.x, device=self.device)
        probs, y = probabilities(logits, task), bundle.test.y.numpy()
        metrics = predictive_metrics(probs, y, task)
        metrics["ece"] = expected_calibration_error(probs, y, task)
        metrics.update(class_metrics(probs, y, task, bundle.info.class_names))
        if task != "multilabel":
            metrics["test_correct"] = encode_correct(probs.argmax(1) == y)
        if task == "binary":
            metrics["test_scores"] = encode_scores(probs[:, 1])
            metrics["test_labels"] = encode_correct(y == 1)  # packed bits, the same in every row of the set
        elif task == "multiclass":
            try:  # one float per image gives the macro-AUC gain its interval (evaluate/auc_influence.py)
                metrics["test_auc_influence"] = encode_scores(macro_auc_influence(probs, y))
            except ValueError:  # a class missing from the test split: no macro AUC, no interval
                pass
        if teacher is not None:
            reference = self.teacher_reference(teacher, bundle)
            metrics["teacher_agreement"] = teacher_agreement(logits, reference["logits"], task)
            try:
                metrics["explanation_agreement"] = explanation_agreement(
                    model, reference["cam"], reference["x"], reference["target"])
            except Exception as exc:  # a model Grad-CAM cannot read: the column is empty, the job goes on
                metrics["explanation_agreement"] = None
                metrics["explanation_agreement_note"] = f"{type(exc).__name__}: {exc}"
        metrics.update(efficiency(model, bundle.test.x[:1], self.device))
        return metrics

    def teacher_reference(self, teacher, bundle: DatasetBundle) -> dict:
        """The teacher's test logits and its Grad-CAM on the explanation subset, computed once per teacher."""
        key = (id(teacher), bundle.fingerprint)
        if key not in self._teacher_refs:
            teacher = teacher.to(memory_format=memory_format_for(teacher, self.device))
            logits = predict_logits(teacher, bundle.test.x, device=self.device)
            idx = xai_subset(bundle, self.bench.xai_samples)
            x = bundle.test.x[idx].to(self.device)
            target = torch.from_numpy(logits[idx].argmax(1)).to(self.device)
            self._teacher_refs = {key: {"logits": logits, "x": x, "target": target,
                                        "cam": gradcam_at_input(teacher, x, target)}}  # one teacher at a time
        return self._teacher_refs[key]

    def student_job(self, job: Job, bundle: DatasetBundle, teacher) -> list[dict]:
        """Distil, evaluate, explain: the rows of one student job."""
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
                         on_epoch=lambda e, r: (self.reporter.epoch(e + 1, r), log.write(r)),
                         teacher_cache=self.teacher_cache,
                         data_id=f"{bundle.fingerprint}/seed={job.seed}/fraction={job.fraction!r}")
        finally:
            method.release()
        model = method.deployable().eval()
        checkpoint = self.store.save("students", job.config_hash, model.state_dict(),
                                     {"job": job.label, "best_epoch": result.best_epoch})
        row = self.base_row(job)
        row["checkpoint"] = str(checkpoint)
        row.update(self.evaluate(model, bundle, info.task, teacher=teacher))
        row.update(train_seconds=result.seconds, best_epoch=result.best_epoch, train_images=len(idx))
        label = f"{job.student} {job.method}" + (f" f={job.fraction:g}" if len(self.bench.fractions) > 1 else "")
        return [row] + self.explain(model, bundle, row, label, first_seed=job.seed == self.bench.seeds[0])

    def explain(self, model, bundle: DatasetBundle, row: dict, label: str, first_seed: bool = True) -> list[dict]:
        """Explanation rows of one model; its maps are stored for the figure (first seed only)."""
        if not self.explainers:
            return []
        self.reporter.note(f"  explaining {label} with {', '.join(c.name for c in self.explainers)}")
        done = explain_model(model, bundle, self.explainers, self.xai_metrics, self.bench.xai_samples, self.device)
        if first_seed:
            if done.maps:  # kept with the checkpoints, so any later run can redraw the whole figure
                self.store.save_arrays("maps", row["config_hash"], done.maps)
            if self.bench.featuremap_figures and "featuremaps" in self.bench.explainers:
                idx = xai_subset(bundle, self.bench.xai_samples)[:FIGURE_IMAGES]
                names, maps = stage_maps(model, bundle.test.x[idx].to(self.device))
                self.store.save_arrays("featuremaps", row["config_hash"],
                                       {f"{i:02d} {n}": maps[:, i].cpu().numpy() for i, n in enumerate(names)})
        keep = {k: row[k] for k in BASE_ROW_KEYS}
        return [dict(keep, **r) for r in done.rows]
