"""Safe weight loading: sources (local, bundled, Hub), formats, and state-dict checks."""

from zoo_core.weights.formats import encode_safetensors, read_tensors
from zoo_core.weights.sources import WeightFiles, resolve_weights, sha256_file
from zoo_core.weights.state import check_state, load_state

__all__ = [
    "WeightFiles",
    "check_state",
    "encode_safetensors",
    "load_state",
    "read_tensors",
    "resolve_weights",
    "sha256_file",
]
