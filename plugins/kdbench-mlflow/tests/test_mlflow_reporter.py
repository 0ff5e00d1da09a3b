import math

import pytest

pytest.importorskip("kdbench_mlflow")

from mlflow.tracking import MlflowClient  # noqa: E402


def test_each_job_becomes_an_mlflow_run_with_the_same_metrics(kdbench_tiny_run, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    rows = kdbench_tiny_run(methods=["hinton", "fitnets"], explainers=["gradcam", "random"],
                            extra=["--plugin-opt", f"mlflow.tracking_uri={uri}", "--plugin-opt",
                                   "mlflow.experiment=kdb-test"])
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("kdb-test")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    jobs = {r.info.run_name: r for r in runs if r.data.tags.get("kind") == "predictive"}
    predictive = [r for r in rows if r["kind"] == "predictive"]
    assert len(jobs) == len(predictive) == 4  # teacher, scratch, hinton, fitnets
    for row in predictive:
        run = jobs[f"{row['student']}-{row['method']}-seed{row['seed']}-frac{row['fraction']:g}"]
        assert run.data.params["config_hash"] == row["config_hash"]
        for metric in ("accuracy", "auc", "f1", "params", "flops", "latency_ms"):
            assert math.isclose(run.data.metrics[metric], row[metric], rel_tol=1e-9)
        for x in (r for r in rows if r["kind"] == "explanation" and r["config_hash"] == row["config_hash"]):
            assert math.isclose(run.data.metrics[f"xai.{x['explainer']}.pointing_game"], x["pointing_game"])
    board = [r for r in runs if r.info.run_name == "leaderboard"]
    assert len(board) == 1
    names = {a.path for a in client.list_artifacts(board[0].info.run_id)}
    assert {"leaderboard.md", "leaderboard.html", "summary.json"} <= names


def test_reporter_stays_off_without_settings(kdbench_tiny_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kdbench_tiny_run(methods=["hinton"])
    assert not list(tmp_path.rglob("mlflow.db")) and not list(tmp_path.rglob("mlruns"))
