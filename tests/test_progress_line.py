"""The one line per finished job that `kdbench run` prints."""

from kdbench.run.progress import job_line

MODEL = {"kind": "predictive", "dataset": "synthetic", "teacher": "resnet18", "student": "mobilenetv3_small_050",
         "method": "hinton", "seed": 0, "fraction": 1.0, "status": "ok", "accuracy": 0.7881, "auc": 0.9234,
         "f1": 0.791, "train_seconds": 20.0}


def _xai(explainer, status, seconds=1.0):
    return {"kind": "explanation", "explainer": explainer, "status": status, "metric_seconds": seconds}


def test_not_applicable_explainers_are_not_counted_as_missing():
    rows = [MODEL, _xai("gradcam", "ok"), _xai("saliency", "ok"), _xai("medtex-mask", "not_applicable", None),
            _xai("random", "ok")]
    assert job_line(rows) == ("synthetic resnet18->mobilenetv3_small_050 hinton seed=0 frac=1: ok accuracy 0.788 "
                              "auc 0.923 f1 0.791, 3/3 explainers scored, 23.0 s")


def test_a_failed_explainer_shows_as_a_shortfall():
    rows = [MODEL, _xai("gradcam", "failed"), _xai("saliency", "ok"), _xai("medtex-mask", "not_applicable", None)]
    assert ", 1/2 explainers scored, 22.0 s" in job_line(rows)


def test_no_applicable_explainer_prints_no_count():
    rows = [MODEL, _xai("medtex-mask", "not_applicable", None)]
    assert "explainers scored" not in job_line(rows)


def test_failed_job_says_why():
    failed = dict(MODEL, status="failed", error="loss became nan at epoch 1, step 3")
    assert job_line([failed]).endswith("hinton seed=0 frac=1: failed: loss became nan at epoch 1, step 3")
