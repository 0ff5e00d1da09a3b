"""MLflow reporter for kdbench, built on the observer hooks.

``on_run_start`` reads ``[plugins.mlflow]`` (``tracking_uri``, ``experiment``); without it
the reporter stays off. An empty table means a local store in the output directory:
``sqlite:///<out>/mlflow.db`` with artifacts in ``<out>/mlartifacts`` (MLflow 3 deprecates
the plain file store; ``file:`` URIs still work where ``MLFLOW_ALLOW_FILE_STORE=true``). Each job's predictive row starts one MLflow run; the job's
explanation rows (which follow it) add their metrics to that run; ``on_run_end`` logs the
published files as artifacts of a ``leaderboard`` run.
"""

from __future__ import annotations

import math
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

import kdbench

PARAMS = ("dataset", "teacher", "student", "method", "seed", "fraction", "epochs", "config_hash")
TAGS = ("status", "error", "device", "kind", "kdbench_version", "torch_version", "timm_version", "quantus_version")
NOT_METRICS = set(PARAMS) | set(TAGS) | {"timestamp", "explainer", "method_options", "checkpoint", "xai_notes",
                                         "teacher_cached", "python_version", "captum_version", "best_epoch"}


class Reporter:
    """State of one kdbench run: the MLflow client, experiment and the run of each job."""

    def __init__(self):
        self.client: MlflowClient | None = None
        self.experiment_id = ""
        self.runs: dict[str, str] = {}

    def start(self, settings: dict, out_dir: Path) -> None:
        if "mlflow" not in settings:
            self.client = None
            return
        own = settings["mlflow"] or {}
        unknown = set(own) - {"tracking_uri", "experiment"}
        if unknown:
            raise ValueError(f"[plugins.mlflow] has no setting {sorted(unknown)[0]!r} (settings: tracking_uri, "
                             f"experiment)")
        out = Path(out_dir).resolve()
        out.mkdir(parents=True, exist_ok=True)
        uri = own.get("tracking_uri") or f"sqlite:///{out / 'mlflow.db'}"
        self.client = MlflowClient(tracking_uri=uri)
        name = own.get("experiment") or out.name
        found = self.client.get_experiment_by_name(name)
        # local stores keep artifacts beside the results; a server decides for itself
        location = (out / "mlartifacts").as_uri() if uri.startswith(("sqlite:", "file:")) else None
        self.experiment_id = found.experiment_id if found else self.client.create_experiment(
            name, artifact_location=location)
        self.runs = {}

    def result(self, row: dict) -> None:
        if self.client is None:
            return
        if row.get("kind", "predictive") == "predictive":
            name = f"{row['student']}-{row['method']}-seed{row['seed']}-frac{row['fraction']:g}"
            run = self.client.create_run(self.experiment_id, run_name=name,
                                         tags={k: str(row.get(k)) for k in TAGS if row.get(k) is not None})
            self.runs[row["config_hash"]] = run.info.run_id
            params = {k: row.get(k) for k in PARAMS}
            params.update({f"opt.{k}": v for k, v in (row.get("method_options") or {}).items()})
            for k, v in params.items():
                self.client.log_param(run.info.run_id, k, v)
            self._metrics(run.info.run_id, row, prefix="")
            self.client.set_terminated(run.info.run_id, "FINISHED" if row.get("status") == "ok" else "FAILED")
        elif row.get("status") == "ok" and row.get("config_hash") in self.runs:
            self._metrics(self.runs[row["config_hash"]], row, prefix=f"xai.{row['explainer']}.")

    def _metrics(self, run_id: str, row: dict, prefix: str) -> None:
        for k, v in row.items():
            if k in NOT_METRICS or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            if math.isfinite(v):
                self.client.log_metric(run_id, prefix + k, float(v))

    def end(self, out_dir: Path, paths: list[Path]) -> None:
        if self.client is None or not paths:
            return
        run = self.client.create_run(self.experiment_id, run_name="leaderboard", tags={"kind": "leaderboard"})
        for p in paths:
            if Path(p).is_file():
                self.client.log_artifact(run.info.run_id, str(p))
        self.client.set_terminated(run.info.run_id, "FINISHED")


REPORTER = Reporter()


@kdbench.hookimpl
def on_run_start(settings, out_dir):
    REPORTER.start(settings, out_dir)


@kdbench.hookimpl
def on_result(row):
    REPORTER.result(row)


@kdbench.hookimpl
def on_run_end(out_dir, paths):
    REPORTER.end(out_dir, paths)


__all__ = ["REPORTER", "Reporter", "mlflow"]
