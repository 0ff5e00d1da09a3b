"""Quantus' random perturbations are seeded per call, and shared forwards change no score."""

import numpy as np
import torch

from kdbench.builtins.models import TinyCNN
from kdbench.explain.metrics import DEFAULT_METRICS, evaluate_metric

FC = next(m for m in DEFAULT_METRICS if m.name == "faithfulness_correlation")
MAX_SENS = next(m for m in DEFAULT_METRICS if m.name == "max_sensitivity")


def setup(n=8):
    torch.manual_seed(0)
    model = TinyCNN(3, 3).eval()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 3, 16, 16)).astype(np.float32)
    y = rng.integers(0, 3, n)
    maps = [rng.normal(size=(n, 1, 16, 16)).astype(np.float32) for _ in range(2)]
    return model, x, y, maps


def counted(model):
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    return calls


def test_a_score_does_not_depend_on_what_ran_before_it_nor_on_the_global_generator():
    model, x, y, (a, b) = setup()
    alone, _ = evaluate_metric(FC, model, x, y, b, None)
    np.random.seed(123)
    evaluate_metric(FC, model, x, y, a, None)
    np.random.rand(17)
    after, _ = evaluate_metric(FC, model, x, y, b, None)
    np.testing.assert_array_equal(after, alone)
    assert np.isfinite(alone).all()
    state = np.random.get_state()[1].copy()
    evaluate_metric(FC, model, x, y, a, None)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # the caller's generator is untouched


def test_explainers_of_one_model_share_faithfulness_forwards_with_identical_scores():
    model, x, y, (a, b) = setup()
    plain = [evaluate_metric(FC, model, x, y, m, None)[0] for m in (a, b)]
    calls = counted(model)
    memo: dict = {}
    first, _ = evaluate_metric(FC, model, x, y, a, None, forward_memo=memo)
    runs_for_first = len(calls)
    second, _ = evaluate_metric(FC, model, x, y, b, None, forward_memo=memo)
    np.testing.assert_array_equal(first, plain[0])
    np.testing.assert_array_equal(second, plain[1])
    assert not np.array_equal(first, second)  # different maps, different scores
    assert runs_for_first == 101  # the unperturbed batch and 100 perturbed copies
    assert len(calls) == runs_for_first  # the second explainer ran the model zero times


def test_metrics_that_re_explain_never_read_the_memo():
    model, x, y, (a, _) = setup(4)

    def explain(model, inputs, targets, **kwargs):
        return np.abs(inputs).sum(1, keepdims=True)

    memo: dict = {}
    with_memo, _ = evaluate_metric(MAX_SENS, model, x, y, a, None, explain_func=explain, forward_memo=memo)
    without, _ = evaluate_metric(MAX_SENS, model, x, y, a, None, explain_func=explain)
    assert memo == {}
    np.testing.assert_array_equal(with_memo, without)


def test_a_constant_map_moves_no_other_image_s_perturbations_nor_the_shared_forwards():
    """Quantus draws per image in batch order: leaving the constant map's image out shifted every later image's
    draws (unpaired against ``random``, and the memo missed). Each other image must score exactly as before."""
    model, x, y, (a, b) = setup()
    flat_a = a.copy()
    flat_a[2] = 0.0  # e.g. a Grad-CAM that is zero everywhere after its ReLU

    def explain(model, inputs, targets, **kwargs):
        return np.abs(inputs).sum(1, keepdims=True)

    for metric in (FC, MAX_SENS):
        whole, _ = evaluate_metric(metric, model, x, y, a, None, explain_func=explain)
        holed, note = evaluate_metric(metric, model, x, y, flat_a, None, explain_func=explain)
        assert note == "1 constant maps skipped" and np.isnan(holed[2])
        others = np.arange(len(x)) != 2
        assert np.isfinite(whole).all()
        np.testing.assert_array_equal(holed[others], whole[others])

    memo: dict = {}
    evaluate_metric(FC, model, x, y, b, None, forward_memo=memo)
    calls = counted(model)
    evaluate_metric(FC, model, x, y, flat_a, None, forward_memo=memo)
    assert calls == []  # an explainer with a constant map reads the same 101 forwards from the memo
