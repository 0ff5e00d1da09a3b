"""The protocol around the numbers: teachers worth distilling, and gains marked only when their interval says so."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from kdbench.report.render import SIGNIFICANT, mark_significant
from kdbench.report.teacher_check import weak_teachers


def _row(method, student, accuracy, auc, seed=0, fraction=1.0):
    return dict(kind="predictive", status="ok", dataset="medmnist:breastmnist", teacher="resnet18", method=method,
                student=student, seed=seed, fraction=fraction, accuracy=accuracy, auc=auc, f1=accuracy,
                config_hash=f"{method}-{student}-{seed}-{fraction}")


def test_a_teacher_weaker_than_a_scratch_student_is_named_with_the_metric_it_loses_on():
    rows = [_row("teacher", "resnet18", 0.80, 0.90), _row("teacher", "resnet18", 0.82, 0.90, seed=1),
            _row("scratch", "smallcnn", 0.84, 0.85), _row("scratch", "smallcnn", 0.84, 0.85, seed=1),
            _row("scratch", "mobilenetv3_small_050", 0.70, 0.80),
            _row("scratch", "tinycnn", 0.95, 0.95, fraction=0.1)]  # a fraction run is not the comparison
    [message] = weak_teachers(rows)
    assert "resnet18 is not better than smallcnn" in message
    assert "accuracy 0.810 vs 0.840" in message and "auc" not in message


def test_a_teacher_better_on_both_metrics_raises_nothing():
    assert weak_teachers([_row("teacher", "resnet18", 0.86, 0.90), _row("scratch", "smallcnn", 0.84, 0.85)]) == []
    assert weak_teachers([_row("scratch", "smallcnn", 0.84, 0.85)]) == []  # no teacher row: nothing to compare


def test_the_footnote_and_the_published_warnings_carry_the_weak_teacher(tmp_path):
    from kdbench.report.publish import publish

    rows = [_row("teacher", "resnet18", 0.80, 0.90), _row("scratch", "smallcnn", 0.84, 0.95),
            _row("hinton", "smallcnn", 0.83, 0.94)]
    published = publish(rows, tmp_path, plots=False)
    assert any("not better than smallcnn" in w for w in published.warnings)
    assert "Warning: on medmnist:breastmnist the teacher resnet18 is not better" in \
        (tmp_path / "leaderboard.md").read_text()


@pytest.mark.parametrize("lo, hi, marked", [(0.01, 0.05, True), (-0.05, -0.01, True), (-0.01, 0.05, False),
                                            (0.0, 0.05, False), (-0.05, 0.0, False),  # 0 on an edge: not excluded
                                            (float("nan"), float("nan"), False)])
def test_a_gain_is_marked_exactly_when_its_interval_excludes_zero(lo, hi, marked):
    r = pd.Series({"gain_accuracy_lo_mean": lo, "gain_accuracy_hi_mean": hi})
    text = mark_significant("+0.031 ± 0.020", r, "gain_accuracy")
    assert text == ("+0.031" + SIGNIFICANT + " ± 0.020" if marked else "+0.031 ± 0.020")
    assert mark_significant("+0.031", pd.Series({}), "gain_f1") == "+0.031"  # no interval: no mark
    # the vs-random table averages per-seed bounds, which are not an interval of the mean: never marked
    assert mark_significant("0.431 ± 0.038", pd.Series({"sparseness_vs_random_lo_mean": 0.3,
                                                        "sparseness_vs_random_hi_mean": 0.5}),
                            "sparseness_vs_random") == "0.431 ± 0.038"


def test_resnet18_64_is_resnet18_on_the_image_upsampled_like_the_dataset_option():
    import timm

    from kdbench.builtins.models import resnet18_64

    torch.manual_seed(0)
    upsampling = resnet18_64(num_classes=3, in_chans=1).eval()
    plain = timm.create_model("resnet18", num_classes=3, in_chans=1).eval()
    plain.load_state_dict({k.replace("conv1.1.", "conv1."): v for k, v in upsampling.state_dict().items()})
    x = torch.rand(2, 1, 28, 28)
    big = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        assert torch.equal(upsampling(x), plain(big))
    assert [e["module"] for e in upsampling.feature_info][1:] == ["layer1", "layer2", "layer3", "layer4"]


def test_teacher_report_judges_the_seed_mean_against_the_medmnist_plus_line_and_the_scratch_students():
    from kdbench.report.teacher_check import teacher_report

    rows = [_row("teacher", "resnet18", 0.85, 0.88), _row("teacher", "resnet18", 0.84, 0.88, seed=1),
            _row("scratch", "smallcnn", 0.80, 0.85), _row("scratch", "smallcnn", 0.82, 0.86, seed=1)]
    [report] = teacher_report(rows).to_dict("records")
    assert report["accuracy_mean"] == pytest.approx(0.845) and report["medmnist_plus_accuracy"] == 0.840
    assert report["meets_line"] and report["beats_scratch"]
    rows[1]["auc"] = 0.86  # AUC mean 0.87 < MedMNIST+ 0.876
    [report] = teacher_report(rows).to_dict("records")
    assert not report["meets_line"] and report["beats_scratch"]


def test_the_predictive_footnote_quotes_the_published_baselines_beside_the_teacher(tmp_path):
    from kdbench.report.leaderboard import footnote

    text = footnote([_row("teacher", "resnet18", 0.85, 0.88), _row("scratch", "smallcnn", 0.80, 0.85)])
    assert "breastmnist MedMNIST v2 0.863 / 0.901, MedMNIST+ 0.840 / 0.876" in text
    assert "Published ResNet-18" not in footnote([{**_row("teacher", "resnet18", 0.9, 0.9), "dataset": "synthetic"}])
