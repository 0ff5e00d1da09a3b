"""Meta-evaluation of the explanation metrics on the synthetic set (exact lesion masks).

In the spirit of MetaQuantus: a metric is worth ranking explainers by only if it can
tell a trained model's explanations from chance *and* from an untrained model's
explanations. For every metric kdbench ranks (``XaiMetric.ranked``), Grad-CAM or
integrated gradients of a trained model must beat ``random`` (the paired 95% bootstrap
interval over images excludes 0) and beat it by more than the same explainer does on an
untrained copy of the model. Metrics that fail this on the synthetic set are reported
but not ranked (docs/explanation-metrics.md has the measurements).
"""

import numpy as np
import pytest
import torch

from kdbench.builtins.models import TinyCNN
from kdbench.explain.explainers import gradcam, integrated_gradients, random_map
from kdbench.explain.metrics import DEFAULT_METRICS, FULL_METRICS
from kdbench.explain.scoring import explain_model
from kdbench.registry import Component

RANKED = [m for m in DEFAULT_METRICS + FULL_METRICS if m.ranked]
EXPLAINERS = [Component("explainers", "gradcam", gradcam),
              Component("explainers", "integrated-gradients", integrated_gradients),
              Component("explainers", "random", random_map)]


@pytest.fixture(scope="module")
def scores(trained_smallcnn):
    data, trained = trained_smallcnn
    torch.manual_seed(0)
    untrained = TinyCNN(3, 3, widths=(16, 32)).eval()
    out = {}
    for label, model in (("trained", trained.eval()), ("untrained", untrained)):
        out[label] = {r["explainer"]: r for r in explain_model(model, data, EXPLAINERS, RANKED, 48, "cpu").rows}
    return out


def test_the_ranked_metrics_are_the_ones_measured_to_separate():
    assert [m.name for m in RANKED] == ["pixel_flipping", "pointing_game", "attribution_localisation",
                                        "topk_intersection", "relevance_rank_accuracy", "road", "irof"]


@pytest.mark.parametrize("metric", RANKED, ids=lambda m: m.name)
def test_a_ranked_metric_tells_a_trained_models_maps_from_random_and_from_an_untrained_models(metric, scores):
    key = f"{metric.name}_vs_random"
    verdicts = {}
    for explainer in ("gradcam", "integrated-gradients"):
        trained, untrained = scores["trained"][explainer], scores["untrained"][explainer]
        assert np.isfinite(trained[metric.name]), trained.get("xai_notes")
        beats_random = trained[f"{key}_lo"] > 0
        untrained_advantage = untrained.get(key, np.nan)  # absent when too few images could be scored
        beats_untrained = bool(np.isfinite(untrained_advantage)) and trained[key] > untrained_advantage
        verdicts[explainer] = (round(trained[key], 3), round(untrained.get(key, np.nan), 3))
        if beats_random and beats_untrained:
            return
    pytest.fail(f"{metric.name} separates neither explainer (trained, untrained advantage over random): {verdicts}")
