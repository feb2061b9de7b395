"""The datasets module: every built-in dataset's shapes, dtypes, ranges and counts, checked
against an independent reading of the same files; the strict IDX and CIFAR-10 readers on
small files written here in the exact formats; checksums, precedence of ZOO_DATA_DIR,
missing-data messages, fingerprints, and datasets that plugins add through
``zoo_datasets``.

Fashion-MNIST comes from Debian's dataset-fashion-mnist and the text corpus from Debian's
fortunes (``make debs``); digits and sunspots from scikit-learn and statsmodels (the test
extra). Where one is missing its tests skip, which fails under CI=true.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
import shutil
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from zoo_core import hookimpl
from zoo_core.data import (
    Dataset,
    DatasetSpec,
    SplitData,
    dataset_spec,
    list_datasets,
    load_dataset,
    series,
    text,
)
from zoo_core.data import images as image_sets
from zoo_core.data.idx import parse_idx
from zoo_core.errors import (
    ConfigError,
    CorruptDatasetError,
    DatasetNotFoundError,
    DuplicateRegistrationError,
    UnknownDatasetError,
)
from zoo_core.plugin_manager import PluginWarning, get_plugin_manager
from zoo_core.settings import ZooSettings

DEBIAN_FASHION = image_sets.DEBIAN_FASHION_MNIST
BUILTIN = {
    "cifar10",
    "digits",
    "fashion-mnist",
    "fortunes",
    "grid25",
    "mnist",
    "ring8",
    "sunspots",
}


def needs(path: Path, package: str) -> None:
    if not path.exists():
        pytest.skip(f"{path} is missing: install the Debian package {package} (make debs)")


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    """An IDX file holding ``array`` (written independently of zoo_core.data.idx)."""
    dtype = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[code]
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


def write_mnist(root: Path, split: str, images: np.ndarray, labels: np.ndarray, gz: bool):
    """IDX files of one split under ``root/mnist``."""
    folder = root / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in zip(image_sets.IDX_FILES[split], (images, labels), strict=True):
        data = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("ZOO_DATA_DIR", str(root))
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    return root


@pytest.fixture(scope="module")
def fashion_train():
    needs(DEBIAN_FASHION, "dataset-fashion-mnist")
    settings = ZooSettings(data_dir=None, network="never", cache_dir=Path("/nonexistent"))
    return load_dataset("fashion-mnist", "train", settings=settings)


def read_debian_idx(name: str) -> np.ndarray:
    """The values of a Debian Fashion-MNIST file, past its header (16 bytes for images,
    8 for labels)."""
    data = gzip.decompress((DEBIAN_FASHION / f"{name}.gz").read_bytes())
    return np.frombuffer(data, dtype=np.uint8, offset=16 if "images" in name else 8).copy()


# --------------------------------------------------------------------------- catalog
def test_builtin_datasets_are_listed_with_their_specs():
    assert set(list_datasets()) >= BUILTIN
    assert list_datasets(modality="points") == ["grid25", "ring8"]
    spec = dataset_spec("fashion-mnist")
    assert isinstance(spec, DatasetSpec)
    assert spec.shape == (1, 28, 28) and spec.splits == ("train", "test")
    assert spec.classes[0] == "T-shirt/top" and len(spec.classes) == 10
    dumped = spec.model_dump()
    assert "loader" not in dumped and json.loads(spec.model_dump_json())["name"] == "fashion-mnist"
    with pytest.raises(ValidationError):
        spec.name = "other"  # frozen


def test_spec_validation():
    fields = dict(modality="points", shape=(2,), splits=("train",), source="x", license="y")
    DatasetSpec(name="ok", loader=print, **fields)
    for bad in (
        {"name": "Bad_Name"},
        {"shape": ()},  # only text has shape ()
        {"source": "two\nlines"},
        {"splits": ("train", "train")},
        {"classes": ()},
        {"extra": 1},
    ):
        with pytest.raises(ValidationError):
            DatasetSpec(**{"name": "ok", "loader": print, **fields, **bad})
    with pytest.raises(ValidationError):
        DatasetSpec(name="t", loader=print, **{**fields, "modality": "text"})


def test_unknown_dataset_names_the_closest():
    with pytest.raises(UnknownDatasetError) as info:
        dataset_spec("fashion-mnst")
    assert info.value.close[0] == "fashion-mnist"
    assert "'fashion-mnist'" in str(info.value) and "ring8" in str(info.value)
    assert isinstance(info.value, LookupError)


def test_unknown_split_lists_the_splits():
    with pytest.raises(ConfigError, match=r"no split 'val'; its splits are: train, test"):
        load_dataset("ring8", split="val")


# --------------------------------------------------------------------------- fashion-mnist
def test_fashion_mnist_train_equals_an_independent_parse(fashion_train):
    data = fashion_train
    assert len(data) == 60000 and data.x.shape == (60000, 1, 28, 28)
    assert data.x.dtype == torch.float32 and data.y.dtype == torch.int64
    assert data.x.min() >= 0 and data.x.max() <= 1
    pixels = read_debian_idx("train-images-idx3-ubyte").reshape(60000, 28, 28)
    labels = read_debian_idx("train-labels-idx1-ubyte")
    first = torch.from_numpy(pixels[0].astype(np.float32) / 255)
    assert torch.equal(data.x[0, 0], first)
    assert torch.equal((data.x[:, 0] * 255).round().to(torch.uint8), torch.from_numpy(pixels))
    assert torch.equal(data.y, torch.from_numpy(labels.astype(np.int64)))
    assert torch.bincount(data.y).tolist() == [6000] * 10
    x0, y0 = data[0]
    assert torch.equal(x0, data.x[0]) and y0 == data.y[0] == 9  # an ankle boot


def test_fashion_mnist_test_split():
    needs(DEBIAN_FASHION, "dataset-fashion-mnist")
    data = load_dataset("fashion-mnist", "test")
    assert data.x.shape == (10000, 1, 28, 28)
    assert torch.bincount(data.y).tolist() == [1000] * 10


def test_recorded_sha256_is_the_files_hash(fashion_train):
    assert sorted(fashion_train.files) == [
        str(DEBIAN_FASHION / "train-images-idx3-ubyte.gz"),
        str(DEBIAN_FASHION / "train-labels-idx1-ubyte.gz"),
    ]
    for path, digest in fashion_train.files.items():
        assert digest == hashlib.sha256(Path(path).read_bytes()).hexdigest()


def copy_fashion_test(data_dir: Path) -> Path:
    folder = data_dir / "fashion-mnist"
    folder.mkdir()
    for name in image_sets.IDX_FILES["test"]:
        shutil.copy(DEBIAN_FASHION / f"{name}.gz", folder)
    return folder


def test_zoo_data_dir_takes_precedence_over_debian(data_dir):
    needs(DEBIAN_FASHION, "dataset-fashion-mnist")
    folder = copy_fashion_test(data_dir)
    ours = load_dataset("fashion-mnist", "test")
    assert all(Path(path).parent == folder for path in ours.files)
    debian = load_dataset("fashion-mnist", "test", settings=ZooSettings(data_dir=None))
    assert all(Path(path).parent == DEBIAN_FASHION for path in debian.files)
    assert torch.equal(ours.x, debian.x) and torch.equal(ours.y, debian.y)
    assert ours.fingerprint == debian.fingerprint  # same file hashes, wherever they lie


def test_a_flipped_byte_in_a_copy_is_caught(data_dir):
    needs(DEBIAN_FASHION, "dataset-fashion-mnist")
    folder = copy_fashion_test(data_dir)
    # An uncompressed labels file that is still valid IDX, with one label changed.
    labels = bytearray(gzip.decompress((folder / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    labels[8] = (labels[8] + 1) % 10
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    (folder / "t10k-labels-idx1-ubyte").write_bytes(bytes(labels))
    with pytest.raises(CorruptDatasetError, match="sha256 mismatch") as info:
        load_dataset("fashion-mnist", "test")
    assert str(folder / "t10k-labels-idx1-ubyte") in str(info.value)
    # A byte flipped inside the compressed images: gzip's CRC or the checksum catches it.
    (folder / "t10k-labels-idx1-ubyte").write_bytes(
        gzip.decompress((DEBIAN_FASHION / "t10k-labels-idx1-ubyte.gz").read_bytes())
    )
    images = bytearray((folder / "t10k-images-idx3-ubyte.gz").read_bytes())
    images[len(images) // 2] ^= 0x01
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(bytes(images))
    with pytest.raises(CorruptDatasetError) as info:
        load_dataset("fashion-mnist", "test")
    assert str(folder / "t10k-images-idx3-ubyte.gz") in str(info.value)


def test_missing_fashion_mnist_names_every_place(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(image_sets, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    monkeypatch.setenv("ZOO_NETWORK", "never")
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("fashion-mnist", "train")
    message = str(info.value)
    assert "\n" not in message
    for place in (
        data_dir / "fashion-mnist",
        tmp_path / "no-debian",
        tmp_path / "cache" / "datasets" / "FashionMNIST" / "raw",
    ):
        assert str(place) in message
    for hint in ("ZOO_DATA_DIR", "dataset-fashion-mnist", "network policy is never"):
        assert hint in message
    # An incomplete folder says what it lacks.
    (data_dir / "fashion-mnist").mkdir()
    (data_dir / "fashion-mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(DatasetNotFoundError, match="lacks train-labels-idx1-ubyte or"):
        load_dataset("fashion-mnist", "train")


def test_download_without_network_fails_with_the_places(
    data_dir, tmp_path, monkeypatch, no_network
):
    pytest.importorskip("torchvision")
    monkeypatch.setattr(image_sets, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    monkeypatch.setenv("ZOO_NETWORK", "if-missing")
    with pytest.raises(DatasetNotFoundError, match=r"torchvision download into .*\(failed: "):
        load_dataset("fashion-mnist", "test")
    assert no_network.attempts  # it tried, and the test's block refused


# --------------------------------------------------------------------------- IDX, MNIST
def test_mnist_from_small_idx_files(data_dir):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    write_mnist(data_dir, "train", images, labels, gz=True)
    write_mnist(data_dir, "test", images[:1], labels[:1], gz=False)
    train = load_dataset("mnist", "train")
    assert train.x.shape == (3, 1, 28, 28) and train.y.tolist() == [7, 0, 9]
    assert torch.equal(train.x[:, 0], torch.from_numpy(images.astype(np.float32) / 255))
    test = load_dataset("mnist", "test")
    assert len(test) == 1 and test.y.tolist() == [7]
    assert train.spec.classes == tuple("0123456789")


def test_parse_idx_reads_every_type_big_endian():
    values = np.array([[1, -2, 300], [4, 5, -32768]], dtype=np.int16)
    assert np.array_equal(parse_idx(idx_bytes(values, 0x0B), "x"), values)
    floats = np.array([0.5, -1.25], dtype=np.float32)
    assert np.array_equal(parse_idx(idx_bytes(floats, 0x0D), "x"), floats)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda b: b"\x00\x01" + b[2:], "bad IDX magic number"),
        (lambda b: b[:2] + b"\x07" + b[3:], "bad IDX magic number"),  # unknown type code
        (lambda b: b[:-1], "truncated"),
        (lambda b: b + b"\x00", "trailing bytes"),
        (lambda b: b[:10], "truncated"),  # inside the header
        (lambda b: b[:3], "too short"),
    ],
)
def test_malformed_idx_is_a_typed_error_naming_the_file(data_dir, mangle, message):
    folder = write_mnist(
        data_dir, "test", np.zeros((3, 28, 28), np.uint8), np.zeros(3, np.uint8), gz=False
    )
    path = folder / "t10k-images-idx3-ubyte"
    path.write_bytes(mangle(path.read_bytes()))
    with pytest.raises(CorruptDatasetError, match=message) as info:
        load_dataset("mnist", "test")
    assert str(path) in str(info.value)


def test_idx_files_that_are_not_mnist_are_refused(data_dir):
    folder = write_mnist(
        data_dir, "test", np.zeros((3, 28, 28), np.uint8), np.array([1, 2, 10], np.uint8), False
    )
    with pytest.raises(CorruptDatasetError, match="label 10 is not a class"):
        load_dataset("mnist", "test")
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(2, np.uint8)))
    with pytest.raises(CorruptDatasetError, match="expected 3 labels"):
        load_dataset("mnist", "test")
    (folder / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((2, 32, 32), np.uint8)))
    with pytest.raises(CorruptDatasetError, match="expected 28x28 images"):
        load_dataset("mnist", "test")
    (folder / "t10k-images-idx3-ubyte").write_bytes(b"not gzip")
    (folder / "t10k-images-idx3-ubyte").rename(folder / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(CorruptDatasetError, match="not a valid gzip file"):
        load_dataset("mnist", "test")


def test_missing_mnist_says_how_to_provide_it(data_dir):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", "train")
    assert str(data_dir / "mnist") in str(info.value) and "ZOO_DATA_DIR" in str(info.value)


def test_fingerprint_follows_the_files(data_dir, tmp_path, monkeypatch):
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    folder = write_mnist(data_dir, "train", images, np.array([1, 2, 3], np.uint8), gz=False)
    first = load_dataset("mnist", "train")
    assert len(first.fingerprint) == 64
    assert load_dataset("mnist", "train").fingerprint == first.fingerprint
    images[1, 5, 5] = 1
    write_mnist(data_dir, "train", images, np.array([1, 2, 3], np.uint8), gz=False)
    changed = load_dataset("mnist", "train")
    assert changed.fingerprint != first.fingerprint
    assert (
        changed.files[str(folder / "train-labels-idx1-ubyte")]
        == (first.files[str(folder / "train-labels-idx1-ubyte")])
    )
    # Moving the same files elsewhere keeps the fingerprint; another split's differs.
    shutil.copytree(folder, tmp_path / "elsewhere" / "mnist")
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "elsewhere"))
    assert load_dataset("mnist", "train").fingerprint == changed.fingerprint
    other = Dataset(changed.spec, "test", changed.x, changed.y, changed.files)
    assert other.fingerprint != changed.fingerprint


# --------------------------------------------------------------------------- CIFAR-10
def cifar_records(labels: list[int], seed: int) -> tuple[bytes, np.ndarray]:
    """Records of CIFAR-10's binary version: a label byte, then the R, G, B planes."""
    rng = np.random.default_rng(seed)
    planes = rng.integers(0, 256, size=(len(labels), 3, 1024), dtype=np.uint8)
    data = b"".join(bytes([label]) + planes[i].tobytes() for i, label in enumerate(labels))
    return data, planes


def write_cifar(folder: Path) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True)
    (folder / "batches.meta.txt").write_text("\n".join(image_sets.CIFAR10_CLASSES) + "\n\n")
    planes = {}
    for i, name in enumerate([*image_sets.CIFAR10_FILES["train"], "test_batch.bin"]):
        data, planes[name] = cifar_records([i % 10, 9 - i % 10], seed=i)
        (folder / name).write_bytes(data)
    return planes


def test_cifar10_binary_records(data_dir):
    planes = write_cifar(data_dir / "cifar10" / "cifar-10-batches-bin")
    test = load_dataset("cifar10", "test")
    assert test.x.shape == (2, 3, 32, 32) and test.x.dtype == torch.float32
    assert test.y.tolist() == [5, 4]
    red, green, blue = planes["test_batch.bin"][1]  # second record
    assert torch.equal(test.x[1, 0], torch.from_numpy(red.reshape(32, 32) / np.float32(255)))
    assert torch.equal(test.x[1, 1], torch.from_numpy(green.reshape(32, 32) / np.float32(255)))
    assert torch.equal(test.x[1, 2], torch.from_numpy(blue.reshape(32, 32) / np.float32(255)))
    train = load_dataset("cifar10", "train")
    assert len(train) == 10 and train.y.tolist() == [0, 9, 1, 8, 2, 7, 3, 6, 4, 5]
    assert len(train.files) == 6  # the meta file and the five batches


def test_cifar10_without_the_extracted_folder_and_broken_files(data_dir):
    folder = data_dir / "cifar10"
    write_cifar(folder)
    assert len(load_dataset("cifar10", "test")) == 2
    (folder / "test_batch.bin").write_bytes(cifar_records([1, 2], 0)[0][:-5])
    with pytest.raises(CorruptDatasetError, match="not a whole number of 3073-byte") as info:
        load_dataset("cifar10", "test")
    assert str(folder / "test_batch.bin") in str(info.value)
    (folder / "test_batch.bin").write_bytes(cifar_records([10], 0)[0])
    with pytest.raises(CorruptDatasetError, match="label 10"):
        load_dataset("cifar10", "test")
    (folder / "batches.meta.txt").write_text("apple\nbowl\n")  # CIFAR-100's would differ too
    with pytest.raises(CorruptDatasetError, match="class names"):
        load_dataset("cifar10", "test")
    (folder / "batches.meta.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="lacks batches.meta.txt"):
        load_dataset("cifar10", "test")


# --------------------------------------------------------------------------- digits
def test_digits_from_scikit_learn():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    reference = sklearn_datasets.load_digits()
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert train.x.shape == (1500, 1, 8, 8) and test.x.shape == (297, 1, 8, 8)
    assert train.x.dtype == torch.float32 and train.x.min() == 0 and train.x.max() == 1
    both = torch.cat([train.x, test.x])[:, 0]
    assert torch.equal(both * 16, torch.from_numpy(reference.images).float())
    assert torch.cat([train.y, test.y]).tolist() == reference.target.tolist()
    (path,) = train.files
    assert path.endswith("digits.csv.gz")


def test_digits_without_scikit_learn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(DatasetNotFoundError, match="pip install scikit-learn"):
        load_dataset("digits", "train")


# --------------------------------------------------------------------------- mixtures
@pytest.mark.parametrize(
    ("name", "modes", "std", "variance"),
    # variance of one coordinate over the whole mixture: mean of the squared mode
    # coordinates (cos^2 averages 1/2 on the ring; {16, 4, 0, 4, 16} on the grid) + std^2
    [("ring8", 8, 0.01, 0.5 + 0.01**2), ("grid25", 25, 0.05, 8.0 + 0.05**2)],
)
def test_mixtures_match_their_closed_form(name, modes, std, variance):
    data = load_dataset(name, "train")
    n = 100_000
    assert data.x.shape == (n, 2) and data.x.dtype == torch.float32 and data.y.dtype == torch.int64
    counts = torch.bincount(data.y, minlength=modes)
    assert len(counts) == modes
    p = 1 / modes
    assert (counts - n * p).abs().max() < 5 * (n * p * (1 - p)) ** 0.5  # equal weights
    centers = torch.tensor(data.params["centers"], dtype=torch.float64)
    if name == "ring8":
        angles = 2 * torch.pi * torch.arange(8, dtype=torch.float64) / 8
        assert torch.allclose(centers, torch.stack([angles.cos(), angles.sin()], dim=1))
    else:
        assert set(centers.flatten().tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}
        assert len({tuple(c) for c in centers.tolist()}) == 25
    offsets = data.x.double() - centers[data.y]
    for k in range(modes):
        mine = offsets[data.y == k]
        sd = mine.std(dim=0)
        assert ((sd / std - 1).abs() < 0.05).all(), (k, sd)
        assert (mine.mean(dim=0).abs() < 5 * std / len(mine) ** 0.5).all()
    assert offsets.abs().max() < 7 * std  # each point is at its own mode
    assert torch.allclose(
        data.x.double().var(dim=0), torch.tensor([variance] * 2).double(), rtol=0.02
    )


def test_mixtures_are_deterministic_and_fingerprinted_by_their_parameters():
    a, b = load_dataset("ring8", "test"), load_dataset("ring8", "test")
    assert torch.equal(a.x, b.x) and a.fingerprint == b.fingerprint
    assert len(a) == 10_000 and a.files == {}
    assert a.params["seed"] == 1 and load_dataset("ring8", "train").params["seed"] == 0
    assert not torch.equal(a.x[:100], load_dataset("ring8", "train").x[:100])
    wider = Dataset(a.spec, "test", a.x, a.y, a.files, {**a.params, "std": 0.02})
    assert wider.fingerprint != a.fingerprint


def test_datasets_plug_into_a_dataloader():
    from torch.utils.data import DataLoader

    data = load_dataset("grid25", "test")
    x, y = next(iter(DataLoader(data, batch_size=4)))
    assert x.shape == (4, 2) and torch.equal(y, data.y[:4])
    series_data = Dataset(data.spec, "test", data.x, None, {})
    x, y = next(iter(DataLoader(series_data, batch_size=3, collate_fn=Dataset.collate)))
    assert x.shape == (3, 2) and y is None


# --------------------------------------------------------------------------- text
def test_fortunes_corpus():
    needs(text.DEBIAN_FORTUNES / "fortunes", "fortunes")
    train, test = load_dataset("fortunes", "train"), load_dataset("fortunes", "test")
    assert isinstance(train.x, list) and all(isinstance(d, str) and d for d in train.x)
    # An independent count: entries are separated by lines holding only "%".
    total, first = 0, None
    for name in text.FORTUNE_FILES:
        source = (text.DEBIAN_FORTUNES / name).read_text(encoding="utf-8")
        entries = [e for e in ("\n" + source + "\n").split("\n%\n") if e.strip()]
        first = first or entries[0].strip("\n")
        total += len(entries)
    assert len(train) + len(test) == total > 10_000
    assert len(test) == total // 10
    assert train.x[0] == first
    assert not any(re.search(r"(?m)^%$", doc) for doc in train.x + test.x)
    assert train.spec.classes == text.FORTUNE_FILES and train.y.max() == len(text.FORTUNE_FILES) - 1
    assert train.y.shape == (len(train),) and test.y.shape == (len(test),)
    x, y = next(iter(torch.utils.data.DataLoader(test, batch_size=2, collate_fn=Dataset.collate)))
    assert x == test.x[:2] and torch.equal(y, test.y[:2])
    assert len(train.files) == len(text.FORTUNE_FILES)


def test_fortunes_missing_names_the_debian_package(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(text, "DEBIAN_FORTUNES", tmp_path / "none")
    with pytest.raises(DatasetNotFoundError, match="apt-get install fortunes") as info:
        load_dataset("fortunes", "train")
    assert str(tmp_path / "none") in str(info.value)


# --------------------------------------------------------------------------- time series
def test_sunspots_series():
    package = series.statsmodels_dir()
    if package is None:
        pytest.skip("statsmodels is not installed (pip install statsmodels)")
    imported = "statsmodels" in sys.modules
    train, test = load_dataset("sunspots", "train"), load_dataset("sunspots", "test")
    assert imported or "statsmodels" not in sys.modules  # read without importing it
    assert train.x.shape == (1, 279, 1) and test.x.shape == (1, 30, 1)
    assert train.x.dtype == torch.float32 and train.y is None
    path = package / "datasets" / "sunspots" / "sunspots.csv"
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["YEAR"]) for r in rows] == list(range(1700, 2009))
    values = torch.tensor([float(r["SUNACTIVITY"]) for r in rows], dtype=torch.float32)
    assert torch.equal(torch.cat([train.x, test.x], dim=1).flatten(), values)
    assert train.files == {str(path): hashlib.sha256(path.read_bytes()).hexdigest()}


def test_sunspots_from_zoo_data_dir_is_checked(data_dir):
    folder = data_dir / "sunspots"
    folder.mkdir()
    rows = "".join(f"{1900 + i},{i}.5\n" for i in range(40))
    (folder / "sunspots.csv").write_text('"YEAR","SUNACTIVITY"\n' + rows)
    data = load_dataset("sunspots", "test")
    assert data.x.flatten().tolist() == [i + 0.5 for i in range(10, 40)]
    (folder / "sunspots.csv").write_text('"YEAR","SUNACTIVITY"\n1900,1\n1902,2\n')
    with pytest.raises(CorruptDatasetError, match="consecutive years"):
        load_dataset("sunspots", "train")


# --------------------------------------------------------------------------- plugins
def tiny_loader(split, settings):
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    return SplitData(x=x, y=np.array([0, 1, 0, 1]), files={}, params={"split": split})


def tiny_spec(name="tiny", loader=tiny_loader, shape=(2,)):
    return DatasetSpec(
        name=name,
        modality="points",
        shape=shape,
        splits=("train",),
        classes=("a", "b"),
        source="made in the test",
        license="none",
        loader=loader,
    )


class DataPlugin:
    def __init__(self, specs):
        self.specs = specs

    @hookimpl
    def zoo_datasets(self):
        return self.specs


def test_zoo_datasets_hook_merges_a_plugins_dataset():
    pm = get_plugin_manager()
    pm.register(DataPlugin({"tiny": tiny_spec()}), name="inline-data")
    try:
        assert "tiny" in list_datasets() and set(list_datasets()) >= BUILTIN
        data = load_dataset("tiny")
        assert data.x.shape == (4, 2) and data.y.tolist() == [0, 1, 0, 1]
        assert data.params == {"split": "train"} and len(data) == 4
    finally:
        pm.unregister(name="inline-data")
    assert "tiny" not in list_datasets()
    with pytest.raises(UnknownDatasetError):
        dataset_spec("tiny")


def test_two_plugins_claiming_a_name_is_an_error_naming_both():
    pm = get_plugin_manager()
    pm.register(DataPlugin({"ring8": tiny_spec("ring8")}), name="inline-ring")
    try:
        with pytest.raises(DuplicateRegistrationError) as info:
            dataset_spec("ring8")
        assert "zoo-core" in str(info.value) and "inline-ring" in str(info.value)
        assert "ring8" not in list_datasets() and "grid25" in list_datasets()
    finally:
        pm.unregister(name="inline-ring")
    assert dataset_spec("ring8").modality == "points"


def test_a_plugin_returning_no_spec_is_quarantined():
    pm = get_plugin_manager()
    pm.register(DataPlugin({"bad": "not a spec", "tiny": tiny_spec()}), name="inline-bad")
    try:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            names = list_datasets()
        assert "bad" not in names and "tiny" not in names and "ring8" in names
        assert any(
            issubclass(w.category, PluginWarning) and "inline-bad" in str(w.message) for w in record
        )
    finally:
        if pm.get_plugin("inline-bad") is not None:
            pm.unregister(name="inline-bad")


@pytest.mark.parametrize(
    ("loader", "shape", "message"),
    [
        (lambda s, c: SplitData(x=np.zeros((2, 2))), (2,), "dtype torch.float64"),
        (lambda s, c: SplitData(x=np.zeros((2, 3), np.float32)), (2,), r"shape \(3,\)"),
        (lambda s, c: SplitData(x=np.zeros((2, 2), np.float32), y=np.array([0, 2])), (2,), "0..1"),
        (lambda s, c: SplitData(x=np.full((2, 2), np.nan, np.float32)), (2,), "NaN"),
        (lambda s, c: SplitData(x=np.zeros((2, 2), np.float32), files={"f": "x"}), (2,), "sha256"),
        (lambda s, c: (np.zeros((2, 2), np.float32), None), (2,), "not SplitData"),
    ],
)
def test_a_loader_whose_data_does_not_match_its_spec_is_refused(loader, shape, message):
    pm = get_plugin_manager()
    pm.register(DataPlugin({"tiny": tiny_spec(loader=loader, shape=shape)}), name="inline-data")
    try:
        with pytest.raises(CorruptDatasetError, match=message):
            load_dataset("tiny")
    finally:
        pm.unregister(name="inline-data")
