"""The core's built-in datasets, returned by its ``zoo_datasets`` hook."""

from __future__ import annotations

from zoo_core.data import images, series, text, toy
from zoo_core.dataset import DatasetSpec


def builtin_specs() -> dict[str, DatasetSpec]:
    specs = [
        DatasetSpec(
            name="fashion-mnist",
            modality="image",
            shape=(1, 28, 28),
            splits=("train", "test"),
            classes=images.FASHION_MNIST_CLASSES,
            source="IDX files: $ZOO_DATA_DIR/fashion-mnist, Debian's dataset-fashion-mnist "
            "(/usr/share/datasets/fashion-mnist), or torchvision's download",
            license="MIT (Zalando SE)",
            description="Zalando's 28x28 grey article images (Xiao et al. 2017, arXiv "
            "1708.07747), 10 classes: train 60000, test 10000; checked against known sha256.",
            loader=images.load_fashion_mnist,
        ),
        DatasetSpec(
            name="mnist",
            modality="image",
            shape=(1, 28, 28),
            splits=("train", "test"),
            classes=images.MNIST_CLASSES,
            source="IDX files in $ZOO_DATA_DIR/mnist",
            license="CC BY-SA 3.0 (Yann LeCun and Corinna Cortes)",
            description="Handwritten digits 28x28: train 60000, test 10000.",
            loader=images.load_mnist,
        ),
        DatasetSpec(
            name="cifar10",
            modality="image",
            shape=(3, 32, 32),
            splits=("train", "test"),
            classes=images.CIFAR10_CLASSES,
            source="CIFAR-10 binary version in $ZOO_DATA_DIR/cifar10[/cifar-10-batches-bin]",
            license="none stated by the authors (Krizhevsky 2009, tech report)",
            description="32x32 colour images, 10 classes: train 50000 (data_batch_1..5), "
            "test 10000 (test_batch).",
            loader=images.load_cifar10,
        ),
        DatasetSpec(
            name="digits",
            modality="image",
            shape=(1, 8, 8),
            splits=("train", "test"),
            classes=images.MNIST_CLASSES,
            source="scikit-learn's bundled copy (sklearn.datasets.load_digits)",
            license="CC BY 4.0 (UCI Optical Recognition of Handwritten Digits)",
            description="1797 8x8 digits with values 0..16 scaled to [0, 1]: train the first "
            "1500, test the last 297.",
            loader=images.load_digits,
        ),
        DatasetSpec(
            name="ring8",
            modality="points",
            shape=(2,),
            splits=("train", "test"),
            source="generated (zoo_core.seeding.Noise): PacGAN, arXiv 1712.04086, section 5.1",
            license="none needed (generated)",
            description="8 Gaussians of std 0.01 on the unit circle, equal weights, y = mode "
            "index: train 100000 points (seed 0), test 10000 (seed 1).",
            loader=toy.load_ring8,
        ),
        DatasetSpec(
            name="grid25",
            modality="points",
            shape=(2,),
            splits=("train", "test"),
            source="generated (zoo_core.seeding.Noise): PacGAN, arXiv 1712.04086, section 5.1",
            license="none needed (generated)",
            description="25 Gaussians of std 0.05 at {-4,-2,0,2,4}^2, equal weights, y = mode "
            "index: train 100000 points (seed 0), test 10000 (seed 1).",
            loader=toy.load_grid25,
        ),
        DatasetSpec(
            name="fortunes",
            modality="text",
            shape=(),
            splits=("train", "test"),
            classes=text.FORTUNE_FILES,
            source="Debian packages fortunes and fortunes-min (/usr/share/games/fortunes)",
            license="BSD (fortune-mod, per Debian's copyright file); quotations of many authors",
            description="Fortune cookies, one document per entry, y = topic file; every 10th "
            "document is test.",
            loader=text.load_fortunes,
        ),
        DatasetSpec(
            name="sunspots",
            modality="sequence",
            shape=(None, 1),
            splits=("train", "test"),
            source="statsmodels' bundled sunspots.csv (NOAA National Geophysical Data Center)",
            license="public domain",
            description="Yearly sunspot numbers 1700-2008 as one series (1, T, 1): train "
            "1700-1978, test the last 30 years 1979-2008.",
            loader=series.load_sunspots,
        ),
    ]
    return {spec.name: spec for spec in specs}
