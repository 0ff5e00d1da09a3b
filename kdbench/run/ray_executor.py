"""Running the plan on Ray: kdbench grows no scheduler of its own.

The plan becomes a task graph. Each teacher (dataset, teacher, seed) is one task; it
trains the teacher (or loads it from the artifact store) and returns its weights through
Ray's object store, plus its reference rows. Every student job is one task that takes
those weights as an argument, so Ray starts it once its teacher exists and runs student
jobs in parallel up to the cluster's resources. Results stream back to the driver, which
stays the single writer of runs.jsonl: resume works exactly as with the local executor.

- Resources: each task asks for ``ray_cpus_per_task`` CPUs (default 1), and one GPU when
  the run's device is CUDA.
- Artifacts: teacher weights travel through the object store, so workers on other nodes
  need no shared disk; checkpoints are also saved to each worker's artifact store
  (``--cache-dir``; point it at a shared path to let later runs reuse them across nodes).
- Failures: a job that raises is returned as a failed row (not retried); a worker that
  dies (killed process, lost node) makes Ray retry the task (``max_retries``).
- ``--plugin`` modules must be importable on the workers (same PYTHONPATH, or installed).
"""

from __future__ import annotations

import os
from dataclasses import asdict

from kdbench.config.benchmark import Benchmark
from kdbench.config.plan import Job
from kdbench.errors import ConfigError

MAX_RETRIES = 3
_WORKER_STEPS: dict[str, object] = {}


def _ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'kdbench[ray]'") from None
    return ray


def _worker_steps(bench_dict: dict, plugin_modules: list[str], out_dir: str, cache_dir: str, threads: int):
    """One set of job steps per worker process and benchmark: datasets are loaded once per worker."""
    import torch

    from kdbench.plugins import load_plugins
    from kdbench.run.steps import JobSteps
    from kdbench.run.store import ArtifactStore

    key = repr((sorted(bench_dict.items()), plugin_modules, out_dir, cache_dir))
    if key not in _WORKER_STEPS:
        torch.set_num_threads(max(1, threads))
        bench = Benchmark(**bench_dict)
        _WORKER_STEPS[key] = JobSteps(bench, load_plugins(plugin_modules), out_dir, store=ArtifactStore(cache_dir))
    return _WORKER_STEPS[key]


def _teacher_task(ctx: dict, job: Job, done_hashes: set[str]):
    steps = _worker_steps(**ctx)
    result = steps.teacher(job, steps.dataset(job.dataset), done_hashes)
    state = {k: v.detach().cpu() for k, v in result.model.state_dict().items()}
    return state, (result.rows, result.trained_now)


def _student_task(ctx: dict, job: Job, teacher_state: dict):
    from kdbench.distill.models import create_model
    from kdbench.distill.training import freeze

    steps = _worker_steps(**ctx)
    info = steps.dataset(job.dataset).info
    teacher = create_model(job.teacher, steps.plugins.models, num_classes=info.num_classes, in_chans=info.in_chans,
                           image_size=info.image_size)
    teacher.load_state_dict(teacher_state)
    return steps.job_rows(job, freeze(teacher.to(steps.device)))


def run_on_ray(runner, todo: list[Job], summary, existing: list[dict]) -> None:
    """Run ``todo`` on Ray; ``runner`` (a :class:`kdbench.run.runner.Runner`) writes the rows."""
    ray = _ray()
    if not ray.is_initialized():
        address = runner.ray_address or None
        kwargs = {"address": address} if address else {"num_cpus": os.cpu_count()}
        ray.init(include_dashboard=False, log_to_driver=os.environ.get("KDBENCH_RAY_LOGS") == "1",
                 ignore_reinit_error=True, **kwargs)
    bench = runner.bench
    cpus = max(1, int(getattr(runner, "ray_cpus_per_task", 1)))
    gpus = 1 if runner.device.startswith("cuda") else 0
    ctx = {"bench_dict": asdict(bench), "plugin_modules": list(runner.plugin_modules),
           "out_dir": str(runner.out_dir), "cache_dir": str(runner.store.root), "threads": cpus}
    teacher_remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=MAX_RETRIES, num_returns=2)(_teacher_task)
    student_remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=MAX_RETRIES)(_student_task)

    done = {r["config_hash"] for r in existing if r.get("status") == "ok"}
    teacher_refs: dict[tuple, object] = {}
    pending: dict[object, tuple[str, Job]] = {}
    for job in todo:
        key = (job.dataset, job.teacher, job.seed)
        if key not in teacher_refs:
            state_ref, rows_ref = teacher_remote.remote(ctx, job, done)
            teacher_refs[key] = state_ref
            pending[rows_ref] = ("teacher", job)
        pending[student_remote.remote(ctx, job, teacher_refs[key])] = ("student", job)

    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        ref = ready[0]
        kind, job = pending.pop(ref)
        try:
            value = ray.get(ref)
        except Exception as exc:  # the teacher's failure, or a worker lost for good
            cause = getattr(exc, "cause", None) or exc
            if kind == "student" and _failed(teacher_refs[(job.dataset, job.teacher, job.seed)]):
                from kdbench.run.runner import TeacherFailedError

                # the student never ran: its row names the teacher, as the local executor's rows do
                cause = TeacherFailedError(f"teacher {job.teacher} on {job.dataset} seed={job.seed} failed: "
                                           f"{type(cause).__name__}: {cause}")
            value = ([], False) if kind == "teacher" else [runner.steps.failed_row(job, cause)]
            if kind == "teacher":
                summary.warnings.append(f"teacher {job.teacher} on {job.dataset} seed={job.seed} failed: {cause}")
        if kind == "teacher":
            rows, trained_now = value
            summary.teachers_trained += trained_now
        else:
            rows = value
        runner.emit(rows, summary)
        if kind == "student":
            runner.reporter.job_done(rows)


def _failed(ref) -> bool:
    """Whether a finished Ray task (a teacher's state) ended in an error; False while it still runs."""
    import ray

    try:
        ray.get(ref, timeout=0)
    except ray.exceptions.GetTimeoutError:
        return False
    except Exception:
        return True
    return False
