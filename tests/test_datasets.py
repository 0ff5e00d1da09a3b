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


def _grey(path: Path, value: int):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16), value, dtype=np.uint8)).save(path)


@pytest.mark.parametrize("train_dir,test_dir", [("Training", "Testing"), ("train", "test"), ("TRAIN", "Test")])
def test_a_train_and_test_layout_keeps_its_test_images_and_draws_validation_from_train(tmp_path, train_dir,
                                                                                         test_dir):
    """The Kaggle brain-tumour layout (Training/<class>, Testing/<class>): the split folders are not classes."""
    for k, cls in enumerate(("glioma", "meningioma")):
        for i in range(8):
            _grey(tmp_path / train_dir / cls / f"{i}.png", 10 + 20 * k + i)
        for i in range(3):
            _grey(tmp_path / test_dir / cls / f"{i}.png", 250 - k)  # test images: 250 (glioma), 249 (meningioma)
    b = folder(str(tmp_path), image_size=16)
    assert b.info.class_names == ("glioma", "meningioma") and b.info.task == "binary"
    assert (len(b.train), len(b.val), len(b.test)) == (14, 2, 6)  # validation: a stratified eighth of train
    assert np.bincount(b.val.y.numpy()).tolist() == [1, 1]
    grey = lambda split: ((split.x[:, 0, 0, 0] * b.info.std[0] + b.info.mean[0]) * 255).round().int().tolist()  # noqa: E731
    assert sorted(zip(grey(b.test), b.test.y.tolist())) == [(249, 1)] * 3 + [(250, 0)] * 3  # exactly Testing/
    assert all(v < 100 for v in grey(b.train) + grey(b.val))  # and no test image in train or val
    again = folder(str(tmp_path), image_size=16)
    assert torch.equal(again.val.x, b.val.x)  # fixed by data_seed


def test_a_valid_folder_is_the_validation_split(tmp_path):
    for split, n in (("Train", 4), ("Valid", 2), ("Test", 2)):
        for cls in ("a", "b"):
            for i in range(n):
                _grey(tmp_path / split / cls / f"{i}.png", i)
    b = folder(str(tmp_path), image_size=16)
    assert (len(b.train), len(b.val), len(b.test)) == (8, 4, 4) and b.info.class_names == ("a", "b")


@pytest.mark.parametrize("layout,message", [
    ({"test/a", "test/b", "a", "b"}, r"split folder\(s\) test but not both a train and a test folder"),
    ({"train/a", "train/b", "test/a", "test/b", "extra"}, r"holds split folders \(test, train\) and other folders "
                                                          r"\(extra\)"),
    ({"train/a", "train/b", "test/a", "test/b", "test/c"}, r"class folder .*test/c has no counterpart in the "
                                                           r"training folder"),
    ({"train/a", "training/b", "test/a"}, "has two train folders, train and training"),
    ({"train/a", "train/b", "test/a", "test/b"}, "2 training images are too few to hold out validation images from"),
])
def test_split_folders_that_would_become_labels_or_drop_images_are_refused(tmp_path, layout, message):
    for sub in layout:
        _grey(tmp_path / sub / "0.png", 1)
    with pytest.raises(DataError, match=message):
        folder(str(tmp_path), image_size=16)


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


def _patient_of_each_image(bundle, split):
    """Images were written as a constant grey 8 * patient: read the patient back."""
    grey = (split.x[:, 0, 0, 0] * bundle.info.std[0] + bundle.info.mean[0]) * 255
    return {round(float(g) / 8) for g in grey}


@pytest.mark.parametrize("style", ["chestxray14", "chexpert", "group_col"])
def test_the_automatic_csv_split_keeps_every_patient_in_one_split(tmp_path, style):
    """ChestX-ray14 has ~3.6 films per patient: a split by image would test on patients seen in training."""
    rows = []
    for p in range(30):
        for film in range(3):
            name = f"train/patient{p:05d}/study{film}/view1_frontal.png" if style == "chexpert" else \
                   f"images/{p:03d}_{film}.png"
            _grey(tmp_path / name, 8 * p)
            rows.append({"Path": name, "Patient ID": p, "Effusion": (p + film) % 2, "Mass": int(p % 3 == 0)})
    df = pd.DataFrame(rows)
    if style == "chexpert":
        df = df.drop(columns="Patient ID")
    if style == "group_col":
        df = df.rename(columns={"Patient ID": "subject"})
    df.to_csv(tmp_path / "labels.csv", index=False)
    extra = {"group_col": "subject"} if style == "group_col" else {}
    b = csv_labels(str(tmp_path / "labels.csv"), image_size=16, **extra)
    assert b.info.class_names == ("Effusion", "Mass")  # the patient column is not a label
    patients = [_patient_of_each_image(b, split) for split in (b.train, b.val, b.test)]
    assert sum(map(len, patients)) == 30 and not (patients[0] & patients[2] or patients[0] & patients[1]
                                                    or patients[1] & patients[2])
    assert (len(b.train), len(b.val), len(b.test)) == tuple(3 * len(p) for p in patients)  # whole patients
    assert len(patients[2]) == 6 and len(patients[1]) == 3  # 20% and 10% of the 30 patients
    again = csv_labels(str(tmp_path / "labels.csv"), image_size=16, **extra)
    assert torch.equal(again.test.x, b.test.x)  # fixed by data_seed


def test_a_group_col_the_csv_lacks_is_named(tmp_path):
    files = _chest_files(tmp_path, 10)
    pd.DataFrame({"Path": files, "Edema": [0, 1] * 5}).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(DataError, match="has no column 'subject' \\(group_col names the patient id column\\)"):
        csv_labels(str(tmp_path / "labels.csv"), image_size=16, group_col="subject")


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
