"""Data inputs a user brings: label CSVs, 8/16-bit image files, npz arrays, dataset options.

Every malformed input is one DataError/ConfigError line naming what is wrong; inputs that
are fine load exactly (label matrices, 16-bit ranges, 8-bit pixels unchanged).
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kdbench.cli import main
from kdbench.data.csv_labels import csv_labels
from kdbench.data.folder import folder
from kdbench.data.images import read_images
from kdbench.data.medmnist import medmnist
from kdbench.errors import ConfigError, DataError


def _png(path: Path, value: int, size: int = 16, colour: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    arr = rng.integers(0, 256, (size, size, 3) if colour else (size, size), dtype=np.uint8)
    Image.fromarray(arr).save(path)


def _images(tmp_path: Path, n: int) -> list[str]:
    names = [f"images/{i:03d}.png" for i in range(n)]
    for i, name in enumerate(names):
        _png(tmp_path / name, i)
    return names


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    return path


def _whole(bundle) -> list[list[float]]:
    return torch.cat([bundle.train.y, bundle.val.y, bundle.test.y]).tolist()


# ---------------------------------------------------------------- label CSVs

# CheXpert style: a text metadata column, 1/0/-1/blank in several spellings, and a label
# column whose blank cell is a space (that alone made pandas read it as text; it was dropped).
CHEXPERT_CELLS = [  # Edema, Cardiomegaly, Effusion
    ["1", "0", "1.0"], ["0", "1", " "], ["-1", "", "0.0"], ["", "1", "-1.0"],
    ["1.0", "-1", "1"], ["0.0", "0", "0"], ["-1.0", "1", "-1"], ["1", "", ""],
    ["0", "-1.0", "1"], ["1", "1", "0"], ["0", "0", "1"], ["-1", "1", "0"],
]


@pytest.mark.parametrize("policy", ["zeros", "ones"])
def test_csv_chexpert_style_loads_the_exact_label_matrix(tmp_path, policy):
    files = _images(tmp_path, len(CHEXPERT_CELLS))
    split = ["train"] * 8 + ["val"] * 2 + ["test"] * 2  # rows stay in file order
    rows = [[f, "Female" if i % 2 else "Male", *cells, split[i]] for i, (f, cells) in enumerate(zip(files,
                                                                                                  CHEXPERT_CELLS))]
    csv = _write_csv(tmp_path / "chexpert.csv", ["Path", "Sex", "Edema", "Cardiomegaly", "Effusion", "split"], rows)
    b = csv_labels(str(csv), image_size=16, uncertain=policy)
    uncertain = 1.0 if policy == "ones" else 0.0
    value = {"1": 1.0, "1.0": 1.0, "0": 0.0, "0.0": 0.0, "": 0.0, " ": 0.0, "-1": uncertain, "-1.0": uncertain}
    assert b.info.class_names == ("Edema", "Cardiomegaly", "Effusion")
    assert _whole(b) == [[value[c] for c in cells] for cells in CHEXPERT_CELLS]


def test_csv_keeps_each_image_with_its_own_label_row_whatever_the_row_order(tmp_path):
    """Rows shuffled and splits interleaved: every loaded image (a constant grey 20 * i) carries row i's labels."""
    n = 12
    for i in range(n):
        (tmp_path / "images").mkdir(exist_ok=True)
        Image.fromarray(np.full((16, 16), 20 * i, dtype=np.uint8)).save(tmp_path / f"images/{i:03d}.png")
    labels = {i: [str((i >> bit) & 1) for bit in range(3)] for i in range(n)}
    split = {i: ("train", "val", "train", "test")[i % 4] if i < 8 else ("train", "val", "test", "train")[i % 4]
             for i in range(n)}
    order = np.random.default_rng(0).permutation(n)
    rows = [[f"images/{i:03d}.png", *labels[i], split[i]] for i in order]
    csv = _write_csv(tmp_path / "labels.csv", ["Path", "A", "B", "C", "split"], rows)
    b = csv_labels(str(csv), image_size=16)
    mean, std = b.info.mean[0], b.info.std[0]
    for name in ("train", "val", "test"):
        part = getattr(b, name)
        grey = (part.x[:, 0] * std + mean) * 255  # back to the file's pixel values
        assert float((grey - grey[:, :1, :1]).abs().max()) < 1e-3  # each image is still its one grey
        found = [round(float(g) / 20) for g in grey[:, 0, 0]]
        assert sorted(found) == sorted(i for i in range(n) if split[i] == name)
        assert part.y.tolist() == [[float(v) for v in labels[i]] for i in found]


@pytest.mark.parametrize("given_labels", [True, False])
@pytest.mark.parametrize("bad", ["yes", "positive", "2", "0.5"])
def test_csv_label_values_other_than_1_0_minus1_are_refused_with_column_value_and_row(tmp_path, bad, given_labels):
    files = _images(tmp_path, 10)
    cells = ["1", "0", "-1", "", "1", "0", bad, "1", "0", "1"]
    rows = [[f, c, str(i % 2)] for i, (f, c) in enumerate(zip(files, cells))]
    csv = _write_csv(tmp_path / "labels.csv", ["Path", "Edema", "Effusion"], rows)
    labels = ["Edema", "Effusion"] if given_labels else None
    with pytest.raises(DataError, match=rf"column 'Edema' of .*labels.csv holds '?{bad}'? in row 7 "
                                        rf"\(images/006.png\); label values must be 1, 0, -1"):
        csv_labels(str(csv), image_size=16, labels=labels)


@pytest.mark.parametrize("second", ["images/003.png", "./images/../images/003.png"])
def test_csv_listing_an_image_twice_is_refused_naming_it(tmp_path, second):
    files = _images(tmp_path, 10)
    files[7] = second
    rows = [[f, str(i % 2)] for i, f in enumerate(files)]
    csv = _write_csv(tmp_path / "labels.csv", ["Path", "Edema"], rows)
    with pytest.raises(DataError, match=r"image images/003.png (\(also written .*\) )?is listed twice in .*labels.csv \(rows 4 and 8\)"):
        csv_labels(str(csv), image_size=16)


@pytest.mark.parametrize("text,msg", [
    ("", "is empty; it needs a header row and one row per image"),
    ("\n\n", "is empty; it needs a header row and one row per image"),
    ("Path,Edema\n", "has a header but no rows"),
    ("Image Index,Finding Labels\n", "has a header but no rows"),
])
def test_empty_csv_is_one_data_error(tmp_path, text, msg):
    (tmp_path / "labels.csv").write_text(text)
    with pytest.raises(DataError, match=msg):
        csv_labels(str(tmp_path / "labels.csv"), image_size=16)


def test_csv_split_values_other_than_train_val_test_are_refused_not_dropped(tmp_path):
    files = _images(tmp_path, 10)
    split = ["train"] * 6 + ["val", "validation", "test", "test"]
    rows = [[f, str(i % 2), s] for i, (f, s) in enumerate(zip(files, split))]
    csv = _write_csv(tmp_path / "labels.csv", ["Path", "Edema", "split"], rows)
    with pytest.raises(DataError, match=r"split column of .* holds 'validation' in row 8 \(images/007.png\)"):
        csv_labels(str(csv), image_size=16)


def test_too_few_images_for_the_automatic_split_is_one_data_error(tmp_path):
    files = _images(tmp_path, 5)
    csv = _write_csv(tmp_path / "labels.csv", ["Path", "Edema"], [[f, str(i % 2)] for i, f in enumerate(files)])
    with pytest.raises(DataError, match="5 images are too few for the seed-fixed 70/10/20"):
        csv_labels(str(csv), image_size=16)


def test_chexpert_csv_runs_end_to_end_through_the_cli(tmp_path):
    files = _images(tmp_path, 20)
    split = ["train"] * 12 + ["val"] * 4 + ["test"] * 4
    edema = ["1", "0", " ", "-1", "1", "0"] * 3 + ["1", "0"]
    effusion = ["0", "1", "1", "", "0", "-1.0", " ", "1"] * 2 + ["0", "1", "0", "1"]
    rows = [[f, e, g, s] for f, e, g, s in zip(files, edema, effusion, split)]
    csv = _write_csv(tmp_path / "chexpert.csv", ["Path", "Edema", "Effusion", "split"], rows)
    out, cache = tmp_path / "out", tmp_path / "cache"
    code = main(["run", "--datasets", f"csv:{csv}", "--methods", "hinton", "--teachers", "tinycnn", "--students",
                 "tinycnn", "--epochs", "1", "--teacher-epochs", "1", "--seeds", "0", "--batch-size", "8",
                 "--out", str(out), "--cache-dir", str(cache), "--quiet", "--dataset-opt", "csv.image_size=16", "--explainers", ""])
    assert code == 0
    rows = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    hinton = [r for r in rows if r["method"] == "hinton"]
    assert len(hinton) == 1 and hinton[0]["status"] == "ok"
    assert isinstance(hinton[0]["auc"], float) and 0.0 <= hinton[0]["auc"] <= 1.0


# ---------------------------------------------------------------- image files

def _old_reader(paths, image_size, channels):
    """The 8-bit reader before 16-bit support, kept here to pin its results."""
    mode = "RGB" if channels == 3 else "L"
    out = np.stack([np.asarray(Image.open(p).convert(mode).resize((image_size, image_size), Image.BILINEAR))
                    .reshape(image_size, image_size, channels) for p in paths])
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)


@pytest.mark.parametrize("channels", [1, 3])
def test_8bit_gray_rgb_and_palette_images_load_bit_identically_to_before(tmp_path, channels):
    # a guard, not a bug report: it passes before and after the 16-bit change, and pins that
    # 8-bit files (and mode I files holding 8-bit values) give exactly the same tensors
    paths = []
    for i, (colour, size) in enumerate([(False, 20), (True, 33), (False, 9), (True, 16)]):
        _png(tmp_path / f"{i}.png", i, size, colour)
        paths.append(tmp_path / f"{i}.png")
    Image.open(paths[1]).convert("P").save(tmp_path / "p.png")
    paths.append(tmp_path / "p.png")
    eight_bit_in_32 = np.random.default_rng(5).integers(0, 256, (12, 12)).astype(np.int32)  # mode I, values <= 255
    Image.fromarray(eight_bit_in_32).save(tmp_path / "i.tif")
    paths.append(tmp_path / "i.tif")
    for size in (8, 16, 24):
        assert torch.equal(read_images(paths, size, channels), _old_reader(paths, size, channels))


def _save(arr: np.ndarray, path: Path) -> Path:
    Image.fromarray(arr).save(path)
    return path


def test_16bit_png_gradient_spans_0_to_1(tmp_path):
    grad = np.linspace(0, 65535, 64 * 64).round().astype(np.uint16).reshape(64, 64)
    path = _save(grad, tmp_path / "g16.png")
    assert Image.open(path).mode == "I;16"
    x = read_images([path], 64, None)
    assert x.shape == (1, 1, 64, 64)
    assert x.min().item() < 0.01 and x.max().item() > 0.99
    assert torch.allclose(x[0, 0].flatten(), torch.from_numpy(grad.flatten() / 65535.0).float(), atol=1e-3)
    rgb = read_images([path], 32, 3)
    assert rgb.shape == (1, 3, 32, 32) and torch.equal(rgb[:, 0], rgb[:, 2]) and rgb.std() > 0.2


@pytest.mark.parametrize("arr,suffix,mode,expected", [
    (np.full((16, 16), 32768, dtype=">u2"), "tif", "I;16B", 32768 / 65535),
    (np.full((16, 16), 13107, dtype=np.int32), "tif", "I", 13107 / 65535),
    (np.full((16, 16), 0.25, dtype=np.float32), "tif", "F", 0.25),
    (np.array([[500.0, 1000.0]] * 8, dtype=np.float32).repeat(8, 1), "tif", "F", None),
])
def test_high_depth_modes_are_scaled_by_their_range_not_clipped(tmp_path, arr, suffix, mode, expected):
    path = _save(arr, tmp_path / f"img.{suffix}")
    assert Image.open(path).mode == mode
    x = read_images([path], 16, 1)
    if expected is None:  # F beyond [0, 1]: divided by its own maximum
        assert x[0, 0, :, 0].max().item() == pytest.approx(0.5, abs=0.02)
        assert x.max().item() == pytest.approx(1.0, abs=0.02)
    else:
        assert torch.allclose(x, torch.full_like(x, expected), atol=1e-3)


def test_16bit_folder_dataset_keeps_brightness_differences_between_classes(tmp_path):
    rng = np.random.default_rng(0)
    for cls, level in (("dim", 2000), ("bright", 30000)):  # both far above 255: clipping made them equal
        (tmp_path / cls).mkdir()
        for i in range(10):
            _save((level + rng.integers(0, 1000, (16, 16))).astype(np.uint16), tmp_path / cls / f"{i}.png")
    b = folder(str(tmp_path), image_size=16)
    x = torch.cat([b.train.x, b.val.x, b.test.x])
    y = torch.cat([b.train.y, b.val.y, b.test.y])
    assert x.std() > 0.5  # standardised: constant images would give std 0
    means = [x[y == k].mean().item() for k in range(2)]
    assert means[b.info.class_names.index("bright")] > means[b.info.class_names.index("dim")] + 1.0


@pytest.mark.parametrize("limit", [100, 3000])  # 64x64 = 4096 pixels: over 2x the limit (error), over it (warning)
def test_decompression_bomb_is_one_data_error(tmp_path, monkeypatch, limit):
    for cls in ("a", "b"):
        for i in range(4):
            _png(tmp_path / cls / f"{i}.png", i, size=8)
    _png(tmp_path / "b" / "huge.png", 9, size=64)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(DataError, match=r"cannot read image .*huge.png: .*4096 pixels.*decompression-bomb"):
        folder(str(tmp_path), image_size=8)


# ---------------------------------------------------------------- npz arrays

def _npz(path: Path, **override) -> None:
    arrays = {}
    for part, n in (("train", 8), ("val", 4), ("test", 4)):
        arrays[f"{part}_images"] = np.zeros((n, 28, 28), np.uint8)
        arrays[f"{part}_labels"] = (np.arange(n) % 2).reshape(n, 1)
    arrays.update(override)
    np.savez(path, **arrays)


@pytest.mark.parametrize("key,array,msg", [
    ("train_images", np.zeros((8,), np.uint8), r"train_images in .* has shape \(8,\)"),
    ("val_images", np.zeros((4, 28), np.uint8), r"val_images in .* has shape \(4, 28\)"),
    ("test_images", np.zeros((4, 28, 28, 3, 2), np.uint8), r"test_images in .* has shape \(4, 28, 28, 3, 2\)"),
    ("train_images", np.zeros((8, 28, 28, 4), np.uint8), r"train_images in .* has shape \(8, 28, 28, 4\)"),
    ("train_images", np.zeros((8, 28, 28), np.float32), r"train_images in .* has dtype float32; expected uint8"),
    ("train_labels", np.zeros((8, 1, 1), np.int64), r"train_labels in .* has shape \(8, 1, 1\)"),
    ("train_labels", np.zeros((8, 2), np.int64), r"train_labels in .* has shape \(8, 2\), expected \(N,\) or \(N, 1\)"),
])
def test_npz_arrays_of_the_wrong_shape_are_named(tmp_path, key, array, msg):
    _npz(tmp_path / "breastmnist.npz", **{key: array})
    with pytest.raises(DataError, match=msg):
        medmnist("breastmnist", root=str(tmp_path))


def test_multilabel_npz_with_one_label_per_image_is_named(tmp_path):
    _npz(tmp_path / "chestmnist.npz", train_labels=np.zeros(8, np.int64))  # chestmnist has 14 labels per image
    with pytest.raises(DataError, match=r"train_labels in .* has shape \(8,\), expected \(N, 14\)"):
        medmnist("chestmnist", root=str(tmp_path))
    _npz(tmp_path / "chestmnist.npz")  # labels (N, 1)
    with pytest.raises(DataError, match=r"train_labels in .* has shape \(8, 1\), expected \(N, 14\)"):
        medmnist("chestmnist", root=str(tmp_path))


# ---------------------------------------------------------------- dataset options

def test_image_size_below_8_is_refused_by_every_image_dataset(tmp_path):
    for cls in ("a", "b"):
        for i in range(4):
            _png(tmp_path / "f" / cls / f"{i}.png", i)
    with pytest.raises(ConfigError, match="folder dataset: image_size 0 is too small; use 8 or more"):
        folder(str(tmp_path / "f"), image_size=0)
    files = _images(tmp_path, 8)
    csv = _write_csv(tmp_path / "labels.csv", ["Path", "Edema"], [[f, str(i % 2)] for i, f in enumerate(files)])
    with pytest.raises(ConfigError, match="csv dataset: image_size -3 is too small"):
        csv_labels(str(csv), image_size=-3)
    _npz(tmp_path / "breastmnist.npz")
    with pytest.raises(ConfigError, match="medmnist: image_size 0 is too small"):
        medmnist("breastmnist", root=str(tmp_path), image_size=0)


RUN = ["run", "--datasets", "synthetic", "--methods", "hinton", "--teachers", "tinycnn", "--students", "tinycnn",
       "--epochs", "1", "--teacher-epochs", "1", "--seeds", "0", "--quiet",
       "--dataset-opt", "synthetic.n_train=16", "--dataset-opt", "synthetic.n_val=8",
       "--dataset-opt", "synthetic.n_test=8", "--explainers", ""]


@pytest.mark.parametrize("bad,msg", [
    ("synthetic.n_train=abc", "dataset option synthetic.n_train='abc' must be a whole number"),
    ("synthetic.image_size=abc", "dataset option synthetic.image_size='abc' must be a whole number"),
    ("synthetic.image_size=32.5", "dataset option synthetic.image_size=32.5 must be a whole number"),
    ("synthetic.seed=1", "dataset synthetic has no option 'seed'"),
    ("csv.labels=5", "dataset option csv.labels=5 must be a list or None"),
    ("csv.image_root=5", "dataset option csv.image_root=5 must be text"),
    ("medmnist.size=abc", "dataset option medmnist.size='abc' must be a whole number"),
    ("medmnist.foo=1", "dataset medmnist has no option 'foo' (options: root, size, image_size, channels)"),
    ("medmnist:breastmnist.size=64", "dataset option medmnist:breastmnist.size: options are set per dataset name"),
    ("synthtic.n_train=5", "unknown dataset 'synthtic'; did you mean 'synthetic'?"),
])
def test_bad_dataset_option_exits_2_with_one_line(tmp_path, capsys, bad, msg):
    code = main([*RUN, "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--dataset-opt", bad])
    err = capsys.readouterr().err
    assert code == 2
    assert msg in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "runs.jsonl").exists()
