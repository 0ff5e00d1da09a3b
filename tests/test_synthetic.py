import numpy as np
import pytest
import torch

from kdbench.builtins.datasets import synthetic
from kdbench.data.synthetic import _LESION_RGB, LESION_TYPES, render
from kdbench.errors import ConfigError


@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel"])
def test_masks_cover_exactly_the_lesion_pixels(task):
    images, masks, labels, clean = render(300, 32, np.random.default_rng(3), task, return_clean=True)
    changed = np.abs(images - clean).max(axis=-1) > 0
    assert np.array_equal(changed, masks)


def _nearest_lesion_colour(images, masks):
    """Per image, the lesion type whose colour is nearest the mean colour of its lesion pixels."""
    means = np.stack([img[m].mean(0) for img, m in zip(images, masks)])
    return np.abs(means[:, None, :] - _LESION_RGB[None]).sum(-1).argmin(1)


def test_every_lesion_class_image_has_a_lesion_and_only_diseased_binary_images_do():
    images, masks, labels = render(400, 32, np.random.default_rng(0), "multiclass")
    assert masks.reshape(400, -1).any(1).all()
    assert set(np.unique(labels)) == {0, 1, 2}
    assert np.array_equal(_nearest_lesion_colour(images, masks), labels)  # the lesion drawn is the label's type
    _, masks, labels = render(400, 32, np.random.default_rng(0), "binary")
    assert np.array_equal(masks.reshape(400, -1).any(1), labels == 1)


def test_multilabel_lesion_types_are_independent_labels():
    images, masks, labels = render(600, 32, np.random.default_rng(1), "multilabel")
    assert labels.shape == (600, len(LESION_TYPES))
    assert np.array_equal(masks.reshape(600, -1).any(1), labels.any(1))
    assert (0.4 < labels.mean(0)).all() and (labels.mean(0) < 0.6).all()  # each type present about half the time
    assert np.abs(np.corrcoef(labels.T) - np.eye(3)).max() < 0.15  # drawn independently, not one coin for all
    one = labels.sum(1) == 1  # an image with one lesion type shows that type's colour
    assert one.sum() > 100 and np.array_equal(_nearest_lesion_colour(images[one], masks[one]), labels[one].argmax(1))


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


def test_every_split_is_standardised_with_the_training_splits_per_channel_statistics():
    b = synthetic(n_train=50, n_val=10, n_test=12, image_size=24)
    raw = torch.from_numpy(render(72, 24, np.random.default_rng(0), "multiclass")[0]).permute(0, 3, 1, 2).double()
    mean, std = raw[:50].mean(dim=(0, 2, 3)), raw[:50].std(dim=(0, 2, 3))
    assert len(set(mean.tolist())) == 3  # the channels differ, so a single scalar statistic would fail below
    np.testing.assert_allclose(b.info.mean, mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(b.info.std, std.numpy(), rtol=1e-5)
    for split, rows in ((b.val, slice(50, 60)), (b.test, slice(60, 72))):  # not their own statistics: no leak
        expected = (raw[rows] - mean[None, :, None, None]) / std[None, :, None, None]
        np.testing.assert_allclose(split.x.double().numpy(), expected.numpy(), atol=1e-5)


@pytest.mark.parametrize("opts,msg", [({"task": "segmentation"}, "task must be"), ({"channels": 2}, "channels"),
                                      ({"image_size": 8}, "too small")])
def test_bad_options_are_refused_clearly(opts, msg):
    with pytest.raises(ConfigError, match=msg):
        synthetic(**opts)


def test_multilabel_masks_are_one_per_lesion_type_and_mark_that_types_pixels():
    rng_args = (300, 32)
    images, union, labels, clean = render(*rng_args, np.random.default_rng(4), "multilabel", return_clean=True)
    same, by_kind, same_labels = render(*rng_args, np.random.default_rng(4), "multilabel", by_kind=True)
    assert np.array_equal(same, images) and np.array_equal(same_labels, labels)  # by_kind changes no draw
    assert by_kind.shape == (300, len(LESION_TYPES), 32, 32)
    assert np.array_equal(by_kind.any(1), union)  # together: every changed pixel
    assert (by_kind.sum(1) <= 1).all()  # each pixel belongs to one type: the one drawn last over it
    assert np.array_equal(by_kind.reshape(300, 3, -1).any(-1), labels.astype(bool))  # a type's mask iff its label
    several = labels.sum(1) >= 2
    for t in range(3):  # a type's pixels show that type's colour, even in images with other types
        pixels = images[several][by_kind[several][:, t]]
        assert np.abs(pixels.mean(0) - _LESION_RGB[t]).sum() < np.abs(pixels.mean(0) - _LESION_RGB[(t + 1) % 3]).sum()


def test_multilabel_bundle_carries_per_label_masks_and_scoring_takes_the_explained_labels():
    from kdbench.data.contract import explained_masks

    b = synthetic(n_train=20, n_val=8, n_test=16, task="multilabel")
    assert b.test.masks.shape == (16, 3, 32, 32)
    masks = b.test.masks.numpy()
    targets = np.array([i % 3 for i in range(16)])
    picked = explained_masks(masks, targets)
    assert picked.shape == (16, 1, 32, 32)
    assert all(np.array_equal(picked[i, 0], masks[i, targets[i]]) for i in range(16))
    single = synthetic(n_train=20, n_val=8, n_test=16).test.masks.numpy()
    assert explained_masks(single, targets) is single  # one mask per image: the class's evidence already
