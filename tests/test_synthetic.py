import numpy as np
import pytest
import torch

from kdbench.builtins.datasets import synthetic
from kdbench.data.synthetic import LESION_TYPES, render
from kdbench.errors import ConfigError


@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel"])
def test_masks_cover_exactly_the_lesion_pixels(task):
    images, masks, labels, clean = render(300, 32, np.random.default_rng(3), task, return_clean=True)
    changed = np.abs(images - clean).max(axis=-1) > 0
    assert np.array_equal(changed, masks)


def test_every_lesion_class_image_has_a_lesion_and_only_diseased_binary_images_do():
    _, masks, labels = render(400, 32, np.random.default_rng(0), "multiclass")
    assert masks.reshape(400, -1).any(1).all()
    assert set(np.unique(labels)) == {0, 1, 2}
    _, masks, labels = render(400, 32, np.random.default_rng(0), "binary")
    assert np.array_equal(masks.reshape(400, -1).any(1), labels == 1)


def test_multilabel_lesion_types_are_independent_labels():
    _, masks, labels = render(600, 32, np.random.default_rng(1), "multilabel")
    assert labels.shape == (600, len(LESION_TYPES))
    assert np.array_equal(masks.reshape(600, -1).any(1), labels.any(1))
    assert 0.4 < labels.mean() < 0.6  # each type present about half the time


def test_same_seed_same_images_other_seed_other_images():
    a = synthetic(n_train=20, n_val=8, n_test=8, data_seed=5)
    b = synthetic(n_train=20, n_val=8, n_test=8, data_seed=5)
    c = synthetic(n_train=20, n_val=8, n_test=8, data_seed=6)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.masks, b.test.masks)
    assert not torch.equal(a.train.x, c.train.x)


def test_bundle_metadata_splits_and_standardisation():
    b = synthetic(n_train=50, n_val=10, n_test=12, channels=1, image_size=24)
    assert b.info.task == "multiclass" and b.info.class_names == LESION_TYPES
    assert b.info.in_chans == 1 and b.info.image_size == 24 and b.info.has_masks
    assert b.train.x.shape == (50, 1, 24, 24) and len(b.val) == 10 and len(b.test) == 12
    assert b.test.masks.shape == (12, 1, 24, 24)
    assert abs(float(b.train.x.mean())) < 1e-4 and abs(float(b.train.x.std()) - 1) < 1e-2


@pytest.mark.parametrize("opts,msg", [({"task": "segmentation"}, "task must be"), ({"channels": 2}, "channels"),
                                      ({"image_size": 8}, "too small")])
def test_bad_options_are_refused_clearly(opts, msg):
    with pytest.raises(ConfigError, match=msg):
        synthetic(**opts)
