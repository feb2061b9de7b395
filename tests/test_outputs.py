"""Writing samples to files: PNG grids and scatters, WAV, text, NumPy."""

from __future__ import annotations

import wave

import numpy as np
import pytest
import torch
from PIL import Image

from zoo_core.errors import OutputPathError
from zoo_core.outputs import image_grid, save_samples


def test_png_grid_places_each_image(tmp_path):
    images = torch.zeros(5, 3, 4, 6)
    for i in range(5):
        images[i, i % 3] = 1.0  # image i is pure red, green or blue
    path = save_samples(images, tmp_path / "grid.png", modality="image")
    pixels = np.asarray(Image.open(path))
    # 5 images -> 3 per row, 2 rows, 2-pixel padding.
    assert pixels.shape == (2 * (4 + 2) + 2, 3 * (6 + 2) + 2, 3)
    for i in range(5):
        y, x = 2 + (i // 3) * 6, 2 + (i % 3) * 8
        expected = np.zeros(3, np.uint8)
        expected[i % 3] = 255
        assert (pixels[y : y + 4, x : x + 6] == expected).all()
    assert (pixels[0] == 0).all()  # padding


def test_grid_quantizes_and_clips():
    grid = image_grid(torch.tensor([[[[-1.0, 0.5, 2.0]]]]), padding=0)
    assert grid[0, :, 0].tolist() == [0, 128, 255]


def test_grayscale_png(tmp_path):
    path = save_samples(torch.full((2, 1, 3, 3), 0.2), tmp_path / "g.png", modality="image")
    image = Image.open(path)
    assert image.mode == "L" and np.asarray(image)[2, 2] == 51


def test_points_scatter_and_npy(tmp_path):
    points = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    png = np.asarray(Image.open(save_samples(points, tmp_path / "p.png", modality="points")))
    assert png.shape == (512, 512, 3)
    assert (png != 255).any(axis=2).sum() > 0
    # The lower-left point is drawn below and left of the upper-right one.
    ys, xs = np.nonzero((png != 255).any(axis=2))
    assert xs.min() < 256 < xs.max() and ys.min() < 256 < ys.max()
    back = np.load(save_samples(points, tmp_path / "p.npy", modality="points"))
    assert np.array_equal(back, points.numpy())


def test_wav_holds_the_clips_in_order(tmp_path):
    clips = torch.tensor([[0.5, -0.5, 1.0], [0.25, 0.0, -1.0]])
    path = save_samples(clips, tmp_path / "a.wav", modality="audio", sample_rate=8)
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8)
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    gap = int(0.25 * 8)
    assert pcm.tolist() == [16384, -16384, 32767] + [0] * gap + [8192, 0, -32767] + [0] * gap


def test_text(tmp_path):
    path = save_samples(["hello", "wörld"], tmp_path / "t.txt", modality="text")
    text = path.read_text(encoding="utf-8")
    assert "=== sample 0 ===\nhello\n" in text and "=== sample 1 ===\nwörld\n" in text


@pytest.mark.parametrize(
    ("name", "modality"),
    [("x.wav", "image"), ("x.png", "text"), ("x.jpg", "image"), ("x.txt", "sequence")],
)
def test_unsupported_combinations(tmp_path, name, modality):
    with pytest.raises(OutputPathError, match="use one of"):
        save_samples(torch.zeros(1, 1, 2, 2), tmp_path / name, modality=modality)
    assert list(tmp_path.iterdir()) == []


def test_missing_directory(tmp_path):
    with pytest.raises(OutputPathError, match="does not exist"):
        save_samples(torch.zeros(1, 2), tmp_path / "nope" / "x.npy", modality="points")


def test_failed_write_leaves_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "x.npy"
    save_samples(torch.ones(2, 2), path, modality="points")
    before = path.read_bytes()

    def broken(fd):
        raise OSError("disk full")

    monkeypatch.setattr("zoo_core._io.os.fsync", broken)
    with pytest.raises(OutputPathError, match="cannot write .*disk full"):
        save_samples(torch.zeros(2, 2), path, modality="points")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.npy"]  # no temporary file left


def test_written_files_get_the_usual_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        path = save_samples(torch.zeros(2, 2), tmp_path / "x.npy", modality="points")
        assert path.stat().st_mode & 0o777 == 0o644
        path.chmod(0o600)
        save_samples(torch.ones(2, 2), path, modality="points")
        assert path.stat().st_mode & 0o777 == 0o600  # an existing file keeps its mode
    finally:
        os.umask(umask)
