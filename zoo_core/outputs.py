"""Samples in their canonical forms, written to files: the one place the CLI and the
leaderboard turn samples into PNG grids, WAV, text and NumPy arrays.

| modality | canonical form               | files          |
|----------|------------------------------|----------------|
| image    | float (N, C, H, W) in [0, 1] | .png grid, .npy |
| points   | float (N, D)                 | .png scatter (D = 2), .npy |
| audio    | float (N, T) in [-1, 1]      | .wav (one after another, 0.25 s apart), .npy |
| sequence | float (N, T, D)              | .npy           |
| text     | list[str]                    | .txt           |

Every file is written atomically: a failure leaves no partial file.
"""

from __future__ import annotations

import io
import math
import os
import wave
from pathlib import Path
from typing import Any

from zoo_core._io import atomic_write_bytes
from zoo_core.errors import OutputPathError

WRITERS = {
    "image": (".png", ".npy"),
    "points": (".png", ".npy"),
    "audio": (".wav", ".npy"),
    "sequence": (".npy",),
    "text": (".txt",),
}


def check_output_path(path: str | Path, modality: str) -> Path:
    """Raise :class:`OutputPathError` unless ``path`` can receive samples of ``modality``."""
    path = Path(path)
    allowed = WRITERS.get(modality, ())
    if path.suffix.lower() not in allowed:
        raise OutputPathError(
            f"cannot write {modality} samples to {path.name!r}; use one of {', '.join(allowed)}"
        )
    if not path.parent.is_dir():
        raise OutputPathError(
            f"the directory {str(path.parent)!r} of the output path does not exist; create it first"
        )
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"the directory {str(path.parent)!r} is not writable")
    if path.is_dir():
        raise OutputPathError(f"the output path {str(path)!r} is a directory; name a file")
    return path


def save_samples(
    samples: Any, path: str | Path, *, modality: str, sample_rate: int | None = None
) -> Path:
    """Write ``samples`` (canonical form of ``modality``) to ``path``; format from the suffix."""
    path = check_output_path(path, modality)
    suffix = path.suffix.lower()
    if suffix == ".txt":
        data = text_bytes(samples)
    elif suffix == ".npy":
        data = npy_bytes(samples)
    elif suffix == ".wav":
        if not sample_rate:
            raise OutputPathError("audio samples need the model's sample_rate to write .wav")
        data = wav_bytes(samples, sample_rate)
    elif modality == "image":
        data = png_bytes(image_grid(samples))
    else:
        data = png_bytes(scatter_image(samples))
    try:
        return atomic_write_bytes(path, data)
    except OSError as exc:
        raise OutputPathError(f"cannot write {path}: {exc.strerror or exc}") from None


def image_grid(images: Any, *, padding: int = 2, nrow: int | None = None):
    """``(N, C, H, W)`` in [0, 1] -> one uint8 ``(H', W', C)`` array, ``nrow`` per row."""
    import numpy as np

    array = _numpy(images)
    if array.ndim != 4 or array.shape[1] not in (1, 3, 4):
        raise OutputPathError(f"expected images (N, C, H, W) with C in 1/3/4, got {array.shape}")
    n, c, h, w = array.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = np.zeros(
        (rows * (h + padding) + padding, nrow * (w + padding) + padding, c), dtype=np.uint8
    )
    pixels = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)
    for i in range(n):
        y, x = padding + (i // nrow) * (h + padding), padding + (i % nrow) * (w + padding)
        grid[y : y + h, x : x + w] = pixels[i]
    return grid


def scatter_image(points: Any, *, size: int = 512, radius: int = 1):
    """2-D points ``(N, 2)`` drawn as dots on a white square, axes scaled to fit."""
    import numpy as np

    array = _numpy(points)
    if array.ndim != 2 or array.shape[1] != 2:
        raise OutputPathError(
            f"a .png scatter needs 2-D points (N, 2), got {array.shape}; use .npy"
        )
    finite = array[np.isfinite(array).all(axis=1)]
    low, high = (finite.min(0), finite.max(0)) if len(finite) else (np.zeros(2), np.ones(2))
    span = max(float((high - low).max()), 1e-6) * 1.1
    centre = (low + high) / 2
    pix = ((finite - centre) / span + 0.5) * (size - 1)
    canvas = np.full((size, size, 3), 255, dtype=np.uint8)
    for x, y in pix.round().astype(int):
        row = size - 1 - y  # y grows upwards
        canvas[max(row - radius, 0) : row + radius + 1, max(x - radius, 0) : x + radius + 1] = (
            31,
            119,
            180,
        )
    return canvas


def png_bytes(array: Any) -> bytes:
    from PIL import Image

    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def wav_bytes(audio: Any, sample_rate: int, gap_seconds: float = 0.25) -> bytes:
    """Mono 16-bit PCM of the clips ``(N, T)`` in [-1, 1], one after another."""
    import numpy as np

    array = _numpy(audio)
    if array.ndim != 2:
        raise OutputPathError(f"expected audio (N, T), got {array.shape}")
    gap = np.zeros((array.shape[0], int(gap_seconds * sample_rate)), dtype=array.dtype)
    signal = np.concatenate([array, gap], axis=1).reshape(-1)
    pcm = (np.clip(signal, -1.0, 1.0) * 32767.0).round().astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def text_bytes(texts: Any) -> bytes:
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise OutputPathError("text samples must be a list of strings")
    blocks = [f"=== sample {i} ===\n{text}\n" for i, text in enumerate(texts)]
    return "\n".join(blocks).encode("utf-8")


def npy_bytes(array: Any) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, _numpy(array), allow_pickle=False)
    return buffer.getvalue()


def _numpy(samples: Any):
    import numpy as np

    if hasattr(samples, "detach"):
        return samples.detach().float().cpu().numpy()
    return np.asarray(samples)
