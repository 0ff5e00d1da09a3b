"""Real dataset kinds: MedMNIST files, class folders and label CSVs."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from kdbench.data.csv_labels import csv_labels
from kdbench.data.folder import folder
from kdbench.data.medmnist import FLAGS, medmnist
from kdbench.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "medmnist"
needs_shared = pytest.mark.skipif(not (SHARED / "breastmnist.npz").exists(), reason="../shared/data/medmnist absent")


@needs_shared
@pytest.mark.parametrize("flag,task,chans,classes,sizes", [
    ("pneumoniamnist", "binary", 1, 2, (4708, 524, 624)),
    ("breastmnist", "binary", 1, 2, (546, 78, 156)),
    ("bloodmnist", "multiclass", 3, 8, (11959, 1712, 3421)),
])
def test_medmnist_files_load_with_task_shapes_labels_and_splits(flag, task, chans, classes, sizes):
    b = medmnist(flag, root=str(SHARED))
    assert b.info.task == task and b.info.in_chans == chans and b.info.num_classes == classes
    assert (len(b.train), len(b.val), len(b.test)) == sizes
    assert b.train.x.shape[1:] == (chans, 28, 28) and b.train.y.dtype == torch.int64
    assert set(torch.unique(b.train.y).tolist()) == set(range(classes))
    assert b.test.masks is None and not b.info.has_masks


@needs_shared
def test_medmnist_resizes_and_adapts_channels():
    b = medmnist("breastmnist", root=str(SHARED), image_size=32, channels=3)
    assert b.train.x.shape[1:] == (3, 32, 32) and b.info.in_chans == 3


def test_medmnist_flags_cover_every_2d_dataset():
    assert len(FLAGS) == 12 and FLAGS["chestmnist"][0] == "multilabel" and len(FLAGS["chestmnist"][2]) == 14


def test_missing_medmnist_file_says_what_was_looked_for_and_where(tmp_path):
    with pytest.raises(DataError, match=f"breastmnist_64.npz not found in {tmp_path}.*--data-root"):
        medmnist("breastmnist", root=str(tmp_path), size=64)
    with pytest.raises(ConfigError, match="unknown medmnist flag 'bloodmnst'; did you mean 'bloodmnist'"):
        medmnist("bloodmnst", root=str(tmp_path))


def test_malformed_npz_is_named(tmp_path):
    (tmp_path / "breastmnist.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(DataError, match=f"cannot read {tmp_path / 'breastmnist.npz'}"):
        medmnist("breastmnist", root=str(tmp_path))
    np.savez(tmp_path / "pneumoniamnist.npz", train_images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match="pneumoniamnist.npz is not a MedMNIST file: it lacks train_labels"):
        medmnist("pneumoniamnist", root=str(tmp_path))


def _image(path: Path, size: int, colour: bool, value: int):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    arr = rng.integers(0, 255, (size, size, 3) if colour else (size, size), dtype=np.uint8)
    Image.fromarray(arr).save(path)


def test_folder_dataset_mixes_gray_and_rgb_of_any_size_and_splits_stratified(tmp_path):
    for k, cls in enumerate(["glioma", "meningioma", "no_tumor"]):
        for i in range(20):
            _image(tmp_path / cls / f"{i}.{'png' if i % 2 else 'jpg'}", 20 + i, colour=i % 3 == 0, value=100 * k + i)
    b = folder(str(tmp_path), image_size=24)
    assert b.info.task == "multiclass" and b.info.class_names == ("glioma", "meningioma", "no_tumor")
    assert b.info.in_chans == 3 and b.train.x.shape[1:] == (3, 24, 24)
    assert (len(b.train), len(b.val), len(b.test)) == (42, 6, 12)
    assert np.bincount(b.test.y.numpy()).tolist() == [4, 4, 4]


def test_folder_dataset_uses_train_val_test_subtrees(tmp_path):
    for split, n in (("train", 6), ("val", 2), ("test", 3)):
        for cls in ("normal", "drusen"):
            for i in range(n):
                _image(tmp_path / split / cls / f"{i}.png", 16, colour=False, value=i)
    b = folder(str(tmp_path), image_size=16)
    assert b.info.task == "binary" and b.info.in_chans == 1
    assert (len(b.train), len(b.val), len(b.test)) == (12, 4, 6)


def test_empty_class_folder_and_unreadable_image_are_named(tmp_path):
    _image(tmp_path / "a" / "0.png", 16, False, 0)
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match=f"class folder {tmp_path / 'b'} holds no images"):
        folder(str(tmp_path))
    (tmp_path / "b" / "broken.png").write_bytes(b"\x89PNG but not really")
    with pytest.raises(DataError, match=f"cannot read image {tmp_path / 'b' / 'broken.png'}"):
        folder(str(tmp_path))


def _chest_files(tmp_path, n=30):
    for i in range(n):
        _image(tmp_path / "images" / f"{i:03d}.png", 20, False, i)
    return [f"images/{i:03d}.png" for i in range(n)]


def test_csv_chestxray14_style_findings_become_labels(tmp_path):
    files = _chest_files(tmp_path)
    findings = ["No Finding", "Effusion", "Effusion|Mass", "Mass", "Atelectasis|Effusion"] * 6
    pd.DataFrame({"Image Index": files, "Finding Labels": findings}).to_csv(tmp_path / "labels.csv", index=False)
    b = csv_labels(str(tmp_path / "labels.csv"), image_size=16)
    assert b.info.task == "multilabel" and b.info.class_names == ("Atelectasis", "Effusion", "Mass")
    assert b.train.y.shape[1] == 3 and len(b.train) + len(b.val) + len(b.test) == 30
    whole = torch.cat([b.train.y, b.val.y, b.test.y])
    assert whole.sum(0).tolist() == [6.0, 18.0, 12.0]


@pytest.mark.parametrize("policy,expected", [("zeros", 0.0), ("ones", 1.0)])
def test_csv_chexpert_style_uncertain_and_blank_policy(tmp_path, policy, expected):
    files = _chest_files(tmp_path, 10)
    df = pd.DataFrame({"Path": files, "Edema": [1, 0, -1, None, 1, 0, -1, None, 1, 0],
                       "Cardiomegaly": [0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
                       "split": ["train"] * 6 + ["val"] * 2 + ["test"] * 2})
    df.to_csv(tmp_path / "chexpert.csv", index=False)
    b = csv_labels(str(tmp_path / "chexpert.csv"), image_size=16, uncertain=policy)
    assert b.info.class_names == ("Edema", "Cardiomegaly") and (len(b.train), len(b.val), len(b.test)) == (6, 2, 2)
    assert b.train.y[2, 0].item() == expected  # -1: uncertain
    assert b.train.y[3, 0].item() == 0.0  # blank: absent


def test_csv_missing_column_is_named(tmp_path):
    _chest_files(tmp_path, 3)
    pd.DataFrame({"file": ["images/000.png"], "Edema": [1]}).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(DataError, match="has no image path column"):
        csv_labels(str(tmp_path / "x.csv"))
    pd.DataFrame({"Path": ["images/000.png"], "Edema": [1]}).to_csv(tmp_path / "y.csv", index=False)
    with pytest.raises(DataError, match="has no label column 'Oedema'"):
        csv_labels(str(tmp_path / "y.csv"), labels=["Oedema"])
