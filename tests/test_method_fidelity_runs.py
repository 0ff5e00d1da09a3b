"""End-to-end properties of the methods on the synthetic set (exact lesion masks)."""

import pytest
import torch

from kdbench.testing import run_tiny_benchmark


def test_e2kd_trains_a_different_student_than_hinton_on_the_default_student(tmp_path):
    """Same seed, same data, same schedule: only the explanation term differs, and it must act."""
    rows = run_tiny_benchmark(tmp_path / "out", methods=["hinton", "e2kd"], cache_dir=tmp_path / "cache",
                              extra=["--students", "mobilenetv3_small_050", "--no-baseline"])
    by_method = {r["method"]: r for r in rows if r["kind"] == "predictive"}
    assert by_method["hinton"]["status"] == by_method["e2kd"]["status"] == "ok"
    a = torch.load(by_method["hinton"]["checkpoint"], weights_only=True)
    b = torch.load(by_method["e2kd"]["checkpoint"], weights_only=True)
    assert a.keys() == b.keys()
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


@pytest.mark.long
def test_medtex_mask_localises_lesions_clearly_better_than_random(tmp_path):
    """Default MED-TEX options; pointing game and attribution localisation on exact lesion masks."""
    rows = run_tiny_benchmark(
        tmp_path / "out", methods=["medtex"], explainers=["medtex-mask", "random"], cache_dir=tmp_path / "cache",
        extra=["--no-baseline", "--epochs", "6", "--teacher-epochs", "4", "--xai-samples", "64",
               "--dataset-opt", "synthetic.n_train=800", "--dataset-opt", "synthetic.n_val=200",
               "--dataset-opt", "synthetic.n_test=200"])
    xai = {r["explainer"]: r for r in rows if r["kind"] == "explanation" and r["method"] == "medtex"}
    mask, rand = xai["medtex-mask"], xai["random"]
    assert mask["status"] == rand["status"] == "ok"
    assert mask["pointing_game"] > 5 * rand["pointing_game"] and mask["pointing_game"] > 0.3
    assert mask["attribution_localisation"] > 2 * rand["attribution_localisation"]
