"""Image datasets: Fashion-MNIST and MNIST (IDX files), CIFAR-10 (its binary version) and
scikit-learn's 8x8 digits. Each loader returns float32 ``(N, C, H, W)`` in ``[0, 1]`` and
int64 labels."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from zoo_core.data.files import Search, data_dir, read_file
from zoo_core.data.idx import read_idx
from zoo_core.dataset import SplitData
from zoo_core.errors import CorruptDatasetError, DatasetNotFoundError
from zoo_core.settings import ZooSettings

logger = logging.getLogger(__name__)

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MNIST_CLASSES = tuple("0123456789")
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

# Images, then labels, of each split; each may also be gzip-compressed (name + ".gz").
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# sha256 of the decompressed IDX files of Fashion-MNIST (Zalando Research), computed from
# Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1. Debian's .gz files are not
# byte-identical to upstream's (their md5 differs from the one torchvision checks), so the
# content is what is checked, whichever copy is read.
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

CIFAR10_FILES = {
    "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("test_batch.bin",),
}
CIFAR10_META = "batches.meta.txt"
CIFAR10_RECORD = 1 + 3 * 32 * 32  # label byte, then the R, G and B planes (row-major 32x32)

DIGITS_TRAIN = 1500  # train: the first 1500 of sklearn's 1797 digits; test: the last 297


def _idx_wanted(split: str) -> list[tuple[str, ...]]:
    return [(name, name + ".gz") for name in IDX_FILES[split]]


def _idx_split(paths: list[Path], known: dict[str, str] | None = None) -> SplitData:
    """Images ``(N, 1, 28, 28)`` in [0, 1] and labels 0..9 from an images and a labels file."""
    files: dict[str, str] = {}
    images, labels = (read_idx(path, files, known) for path in paths)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise CorruptDatasetError(
            f"{paths[0]}: expected 28x28 images of unsigned bytes, got {images.dtype} "
            f"{images.shape}"
        )
    if labels.dtype != np.uint8 or labels.shape != images.shape[:1]:
        raise CorruptDatasetError(
            f"{paths[1]}: expected {len(images)} labels of unsigned bytes (one per image of "
            f"{paths[0].name}), got {labels.dtype} {labels.shape}"
        )
    if labels.size and labels.max() > 9:
        raise CorruptDatasetError(f"{paths[1]}: label {labels.max()} is not a class 0..9")
    x = images[:, None].astype(np.float32)  # (N, 1, 28, 28)
    x /= 255.0
    return SplitData(x=x, y=labels.astype(np.int64), files=files)


def load_fashion_mnist(split: str, settings: ZooSettings) -> SplitData:
    """Fashion-MNIST from ``$ZOO_DATA_DIR/fashion-mnist``, Debian's
    ``/usr/share/datasets/fashion-mnist``, the zoo's torchvision cache, or (network policy
    permitting) torchvision's download into it. Every copy is checked against the known
    sha256 of the IDX content."""
    search = Search("fashion-mnist", split)
    cache = Path(settings.cache_dir) / "datasets"
    places = [
        ("$ZOO_DATA_DIR/fashion-mnist (ZOO_DATA_DIR unset)", data_dir(settings, "fashion-mnist")),
        ("Debian package dataset-fashion-mnist", DEBIAN_FASHION_MNIST),
        ("torchvision cache", cache / "FashionMNIST" / "raw"),
    ]
    paths = search.first(places, _idx_wanted(split))
    if paths is None:
        paths = _download_fashion_mnist(search, settings, cache)
    if paths is None:
        raise search.not_found(
            "set ZOO_DATA_DIR to a folder whose fashion-mnist/ holds the IDX files "
            "(train-images-idx3-ubyte.gz, ...), install the Debian package "
            "dataset-fashion-mnist, or allow the network (ZOO_NETWORK=if-missing) for "
            "torchvision's download"
        )
    logger.debug("fashion-mnist %s from %s", split, paths[0].parent)
    return _idx_split(paths, FASHION_MNIST_SHA256)


def _download_fashion_mnist(search: Search, settings: ZooSettings, root: Path) -> list[Path] | None:
    if settings.effective_network == "never":
        search.note("torchvision download (not tried: the network policy is never)")
        return None
    try:
        from torchvision.datasets import FashionMNIST
    except ImportError:
        search.note("torchvision download (torchvision is not installed: pip install torchvision)")
        return None
    logger.info("downloading Fashion-MNIST with torchvision into %s", root)
    try:
        FashionMNIST(root=str(root), train=search.split == "train", download=True)
    except Exception as exc:  # no network, a mirror down, a full disk: say so, do not crash
        search.note(f"torchvision download into {root} (failed: {' '.join(str(exc).split())})")
        return None
    return search.first(
        [("torchvision download", root / "FashionMNIST" / "raw")], _idx_wanted(search.split)
    )


def load_mnist(split: str, settings: ZooSettings) -> SplitData:
    """MNIST from the IDX files in ``$ZOO_DATA_DIR/mnist`` (gzip-compressed or not)."""
    search = Search("mnist", split)
    places = [("$ZOO_DATA_DIR/mnist (ZOO_DATA_DIR unset)", data_dir(settings, "mnist"))]
    paths = search.first(places, _idx_wanted(split))
    if paths is None:
        raise search.not_found(
            "download the four IDX files of MNIST (train-images-idx3-ubyte.gz, ...) into "
            "$ZOO_DATA_DIR/mnist and set ZOO_DATA_DIR"
        )
    return _idx_split(paths)


def load_cifar10(split: str, settings: ZooSettings) -> SplitData:
    """CIFAR-10's binary version from ``$ZOO_DATA_DIR/cifar10`` (or the extracted
    ``cifar-10-batches-bin`` folder inside it); never the Python pickles."""
    search = Search("cifar10", split)
    root = data_dir(settings, "cifar10")
    places: list[tuple[str, Path | None]] = [("$ZOO_DATA_DIR/cifar10 (ZOO_DATA_DIR unset)", None)]
    if root is not None:  # the extracted archive's folder, or its files directly
        places = [("extracted folder", root / "cifar-10-batches-bin"), ("folder", root)]
    wanted = [(CIFAR10_META,), *((name,) for name in CIFAR10_FILES[split])]
    paths = search.first(places, wanted)
    if paths is None:
        raise search.not_found(
            "extract cifar-10-binary.tar.gz (the binary version, not the Python pickles) into "
            "$ZOO_DATA_DIR/cifar10 and set ZOO_DATA_DIR"
        )
    files: dict[str, str] = {}
    meta = read_file(paths[0], files).decode("utf-8", errors="replace").split()
    if tuple(meta) != CIFAR10_CLASSES:
        raise CorruptDatasetError(
            f"{paths[0]}: expected the class names {', '.join(CIFAR10_CLASSES)}, got "
            f"{', '.join(meta[:12]) or 'nothing'}; is this CIFAR-10's binary version?"
        )
    images, labels = [], []
    for path in paths[1:]:
        data = read_file(path, files)
        if not data or len(data) % CIFAR10_RECORD:
            raise CorruptDatasetError(
                f"{path}: {len(data)} bytes is not a whole number of {CIFAR10_RECORD}-byte "
                f"CIFAR-10 records (1 label byte + 3072 pixel bytes); the file is truncated"
            )
        records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR10_RECORD)
        if records[:, 0].max() > 9:
            raise CorruptDatasetError(f"{path}: label {records[:, 0].max()} is not a class 0..9")
        labels.append(records[:, 0])
        images.append(records[:, 1:].reshape(-1, 3, 32, 32))  # (n, C, H, W): R, G, B planes
    x = np.concatenate(images).astype(np.float32)
    x /= 255.0
    return SplitData(x=x, y=np.concatenate(labels).astype(np.int64), files=files)


def load_digits(split: str, settings: ZooSettings) -> SplitData:
    """scikit-learn's bundled 8x8 digits (values 0..16, scaled to [0, 1])."""
    try:
        import sklearn.datasets
    except ImportError:
        raise DatasetNotFoundError(
            "dataset 'digits' is read from scikit-learn, which is not installed; "
            "pip install scikit-learn (or pip install 'zoo-core[data]')"
        ) from None
    bunch = sklearn.datasets.load_digits()
    files: dict[str, str] = {}
    read_file(Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz", files)
    part = slice(None, DIGITS_TRAIN) if split == "train" else slice(DIGITS_TRAIN, None)
    x = (bunch.images[part] / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8)
    return SplitData(x=x, y=bunch.target[part].astype(np.int64), files=files)
