"""Reading tensor files safely: malformed safetensors, fuzzed headers, and pickle payloads."""

from __future__ import annotations

import json
import pickle
import struct
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st

from zoo_core.errors import CorruptWeightsError, UnsafeFormatError, WeightsNotFoundError
from zoo_core.weights.formats import encode_safetensors, parse_safetensors_header, read_tensors

TORCH_DTYPES = {
    "BOOL": torch.bool,
    "U8": torch.uint8,
    "I8": torch.int8,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
    "U16": torch.uint16,
    "I16": torch.int16,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "U32": torch.uint32,
    "I32": torch.int32,
    "F32": torch.float32,
    "U64": torch.uint64,
    "I64": torch.int64,
    "F64": torch.float64,
}
SIZES = {name: torch.empty((), dtype=dtype).element_size() for name, dtype in TORCH_DTYPES.items()}


def raw_safetensors(header: object, data: bytes, *, header_len: int | None = None) -> bytes:
    """A safetensors file built byte by byte: ``header`` (bytes, or JSON-dumped), ``data``."""
    blob = header if isinstance(header, bytes) else json.dumps(header).encode()
    length = len(blob) if header_len is None else header_len
    return struct.pack("<Q", length) + blob + data


def tensor_bytes(tensor: torch.Tensor) -> bytes:
    return tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def check_loaded(content: bytes, loaded: dict[str, torch.Tensor]) -> None:
    """What loaded is what the file says, by an independent reading of its header."""
    (length,) = struct.unpack("<Q", content[:8])
    header = json.loads(content[8 : 8 + length])
    header.pop("__metadata__", None)
    data = content[8 + length :]
    assert set(loaded) == set(header)
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        assert loaded[name].dtype == TORCH_DTYPES[entry["dtype"]], name
        assert tuple(loaded[name].shape) == tuple(entry["shape"]), name
        assert tensor_bytes(loaded[name]) == data[begin:end], name


# A valid two-tensor file: a: F32 [2] at [0, 8), b: I64 [1] at [8, 16).
A = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
B = {"dtype": "I64", "shape": [1], "data_offsets": [8, 16]}
DATA = struct.pack("<2f", 1.5, -2.0) + struct.pack("<q", 7)


def test_a_valid_handmade_file_loads_exactly(tmp_path):
    path = tmp_path / "ok.safetensors"
    path.write_bytes(raw_safetensors({"__metadata__": {"k": "v"}, "a": A, "b": B}, DATA))
    tensors = read_tensors(path)
    assert tensors["a"].tolist() == [1.5, -2.0] and tensors["a"].dtype == torch.float32
    assert tensors["b"].tolist() == [7] and tensors["b"].dtype == torch.int64


def test_encoded_state_reads_back_bit_exact(tmp_path):
    state = {
        "w": torch.randn(3, 4, generator=torch.Generator().manual_seed(0)),
        "h": torch.arange(5, dtype=torch.float16),
        "n": torch.tensor([True, False]),
    }
    path = tmp_path / "model.safetensors"
    path.write_bytes(encode_safetensors(state, {"architecture": "x"}))
    loaded = read_tensors(path)
    assert set(loaded) == set(state)
    for name, tensor in state.items():
        assert loaded[name].dtype == tensor.dtype
        assert torch.equal(loaded[name], tensor)


MALFORMED = {
    "empty file": b"",
    "shorter than the length prefix": b"\x05\x00\x00",
    "header length past the end": raw_safetensors({"a": A, "b": B}, DATA, header_len=10_000),
    "header length near 2**64": raw_safetensors({"a": A, "b": B}, DATA, header_len=2**64 - 1),
    "invalid JSON": raw_safetensors(b'{"a": {"dtype": ', DATA),
    "header not UTF-8": raw_safetensors(b'{"\xff\xfe": 1}', DATA),
    "header not an object": raw_safetensors([A, B], DATA),
    "header is a string": raw_safetensors("a", DATA),
    "metadata not strings": raw_safetensors({"__metadata__": {"k": 1}, "a": A, "b": B}, DATA),
    "entry not an object": raw_safetensors({"a": [1, 2], "b": B}, DATA),
    "entry with an extra key": raw_safetensors({"a": {**A, "extra": 1}, "b": B}, DATA),
    "entry missing dtype": raw_safetensors(
        {"a": {"shape": [2], "data_offsets": [0, 8]}, "b": B}, DATA
    ),
    "overlapping offsets": raw_safetensors(
        {"a": A, "b": {**B, "data_offsets": [4, 12]}}, DATA[:12]
    ),
    "gap between tensors": raw_safetensors(
        {"a": A, "b": {**B, "data_offsets": [12, 20]}}, DATA + b"\0\0\0\0"
    ),
    "gap at the start": raw_safetensors({"b": {**B, "data_offsets": [8, 16]}}, DATA),
    "truncated data": raw_safetensors({"a": A, "b": B}, DATA[:10]),
    "trailing bytes": raw_safetensors({"a": A, "b": B}, DATA + b"\0\0\0\0"),
    "wrong byte length for the shape": raw_safetensors({"a": {**A, "shape": [3]}, "b": B}, DATA),
    "wrong byte length for the dtype": raw_safetensors({"a": {**A, "dtype": "F64"}, "b": B}, DATA),
    "unknown dtype": raw_safetensors({"a": {**A, "dtype": "F128"}, "b": B}, DATA),
    "dtype not a string": raw_safetensors({"a": {**A, "dtype": 4}, "b": B}, DATA),
    # [true, 2] has the right product (2): only a type check catches it.
    "bool in shape": raw_safetensors({"a": {**A, "shape": [True, 2]}, "b": B}, DATA),
    "negative dimension": raw_safetensors({"a": {**A, "shape": [-2]}, "b": B}, DATA),
    "float dimension": raw_safetensors({"a": {**A, "shape": [2.0]}, "b": B}, DATA),
    "shape not a list": raw_safetensors({"a": {**A, "shape": 2}, "b": B}, DATA),
    "reversed offsets": raw_safetensors({"a": {**A, "data_offsets": [8, 0]}, "b": B}, DATA),
    "three offsets": raw_safetensors({"a": {**A, "data_offsets": [0, 4, 8]}, "b": B}, DATA),
    "bool offsets": raw_safetensors({"a": {**A, "data_offsets": [False, 8]}, "b": B}, DATA),
    "offsets past the data": raw_safetensors({"a": A, "b": {**B, "data_offsets": [8, 24]}}, DATA),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_safetensors_is_corrupt_weights_error(tmp_path, case):
    path = tmp_path / f"{case.replace(' ', '_')}.safetensors"
    path.write_bytes(MALFORMED[case])
    with pytest.raises(CorruptWeightsError) as info:
        read_tensors(path)
    assert type(info.value) is CorruptWeightsError
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)
    # Our own parser catches it, not the library's fallback after the layout "checked out".
    with pytest.raises(CorruptWeightsError):
        parse_safetensors_header(path)


def test_a_library_refusal_after_our_checks_is_still_corrupt_weights(tmp_path, monkeypatch):
    import safetensors.torch

    def refuse(data):
        raise RuntimeError("refused by the library")

    monkeypatch.setattr(safetensors.torch, "load", refuse)
    path = tmp_path / "ok.safetensors"
    path.write_bytes(raw_safetensors({"a": A, "b": B}, DATA))
    with pytest.raises(CorruptWeightsError, match="refused by the library") as info:
        read_tensors(path)
    assert str(path) in str(info.value)


def test_corrupt_error_names_the_tensor(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(raw_safetensors({"a": A, "weird": {**B, "dtype": "Q4"}}, DATA))
    with pytest.raises(CorruptWeightsError, match="'weird'"):
        read_tensors(path)


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="nothing.safetensors"):
        read_tensors(tmp_path / "nothing.safetensors")
    npz = tmp_path / "model.npz"
    npz.write_bytes(b"PK\x03\x04")
    with pytest.raises(UnsafeFormatError, match="model.npz"):
        read_tensors(npz)


# ----------------------------------------------------------------------------- fuzzing
FUZZ = settings(max_examples=300, deadline=None)
KEYS = st.sampled_from(["dtype", "shape", "data_offsets", "__metadata__", "a", "b"]) | st.text(
    max_size=4
)
JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**65), 2**65)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
    | st.sampled_from(list(TORCH_DTYPES)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=24,
)
COUNT = st.integers(0, 24) | st.integers(-3, -1) | st.booleans() | st.just(2**64)
ENTRY = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(list(TORCH_DTYPES)) | st.text(max_size=5),
        "shape": st.lists(COUNT, max_size=3),
        "data_offsets": st.lists(COUNT, min_size=2, max_size=2) | st.lists(COUNT, max_size=3),
    }
)


def read_or_corrupt(content: bytes) -> dict[str, torch.Tensor] | None:
    """``read_tensors`` of ``content``: the tensors, or None after a CorruptWeightsError.

    Any other exception type escapes and fails the test.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.safetensors"
        path.write_bytes(content)
        try:
            loaded = read_tensors(path)
        except CorruptWeightsError as exc:
            assert str(path) in str(exc)
            event("corrupt")
            return None
        event("loaded")
        return loaded


@FUZZ
@given(
    header=st.binary(max_size=64),
    length=st.integers(0, 100) | st.integers(0, 2**64 - 1),
    data=st.binary(max_size=32),
)
def test_fuzz_random_header_bytes(header, length, data):
    content = struct.pack("<Q", length) + header + data
    loaded = read_or_corrupt(content)
    if loaded is not None:
        check_loaded(content, loaded)


@FUZZ
@given(header=JSONISH, data=st.binary(max_size=32))
def test_fuzz_jsonish_header(header, data):
    content = raw_safetensors(header, data)
    loaded = read_or_corrupt(content)
    if loaded is not None:
        check_loaded(content, loaded)


@FUZZ
@given(
    entries=st.dictionaries(st.text(min_size=1, max_size=3), ENTRY, max_size=3),
    metadata=st.none() | st.dictionaries(st.text(max_size=3), st.text(max_size=3) | st.integers()),
    data=st.binary(max_size=48),
)
def test_fuzz_tensor_entries(entries, metadata, data):
    header = dict(entries)
    if metadata is not None:
        header["__metadata__"] = metadata
    content = raw_safetensors(header, data)
    loaded = read_or_corrupt(content)
    if loaded is not None:
        check_loaded(content, loaded)


@st.composite
def valid_layouts(draw):
    """A valid safetensors layout: (header, data), tensors in a random order of the data."""
    names = draw(st.lists(st.text(min_size=1, max_size=4), unique=True, max_size=4))
    names = [n for n in names if n != "__metadata__"]
    header, chunks, offset = {}, [], 0
    for name in draw(st.permutations(names)):
        dtype = draw(st.sampled_from(list(TORCH_DTYPES)))
        shape = draw(st.lists(st.integers(0, 3), max_size=3))
        size = SIZES[dtype]
        for dim in shape:
            size *= dim
        chunks.append(draw(st.binary(min_size=size, max_size=size)))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    if draw(st.booleans()):
        header["__metadata__"] = draw(st.dictionaries(st.text(max_size=3), st.text(max_size=3)))
    return header, b"".join(chunks)


@FUZZ
@given(
    layout=valid_layouts(),
    padding=st.integers(0, 7),
    cut=st.integers(1, 8),
    extra=st.binary(min_size=1, max_size=8),
)
def test_fuzz_valid_files_load_and_their_truncations_do_not(layout, padding, cut, extra):
    header, data = layout
    content = raw_safetensors(json.dumps(header).encode() + b" " * padding, data)  # spec'd pad
    loaded = read_or_corrupt(content)
    assert loaded is not None, "a valid file was refused"
    check_loaded(content, loaded)
    assert read_or_corrupt(content + extra) is None  # trailing bytes
    if data:
        assert read_or_corrupt(content[: max(len(content) - len(data), len(content) - cut)]) is None


@FUZZ
@given(layout=valid_layouts(), data=st.data())
def test_fuzz_one_field_of_a_valid_file_changed(layout, data):
    header, blob = layout
    names = [name for name in header if name != "__metadata__"]
    if names:
        name = data.draw(st.sampled_from(names))
        field = data.draw(st.sampled_from(["dtype", "shape", "data_offsets"]))
        current = header[name][field]
        if field == "data_offsets":
            shift = data.draw(st.integers(-4, 4))
            header[name][field] = data.draw(
                st.just([current[0] + shift, current[1] + shift])
                | st.just([current[0], current[1] + shift])
                | ENTRY.map(lambda entry: entry["data_offsets"])
            )
        else:
            header[name][field] = data.draw(ENTRY.map(lambda entry, f=field: entry[f]))
    content = raw_safetensors(header, blob)
    loaded = read_or_corrupt(content)
    if loaded is not None:
        check_loaded(content, loaded)


# ----------------------------------------------------------------------------- pickle
class WritesSentinel:
    """Unpickling this runs code that creates a file: what a malicious checkpoint does."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').close()",))


def write_payload(path: Path, sentinel: Path, writer: str) -> Path:
    payload = {"means": WritesSentinel(sentinel), "logits": torch.zeros(8)}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with path.open("wb") as handle:
            pickle.dump(payload, handle, protocol=2)  # what torch.load expects
    return path


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pickle_payload_is_refused_and_never_runs(tmp_path, writer):
    sentinel = tmp_path / "pwned"
    path = write_payload(tmp_path / "model.pt", sentinel, writer)
    with pytest.raises(UnsafeFormatError, match="model.pt"):
        read_tensors(path)  # pickle not allowed: not even opened
    assert not sentinel.exists()
    with pytest.raises(UnsafeFormatError, match="model.pt") as info:
        read_tensors(path, allow_pickle=True)  # the weights_only unpickler refuses it
    message = str(info.value)
    assert "GLOBAL" in message and "exec" in message  # torch's reason, on one line ...
    assert "\n" not in message and "\x1b" not in message
    assert "weights_only` set to `False" not in message  # ... without "retry unsafely"
    assert not sentinel.exists()
    # The payload is live: the full unpickler does run it.
    with path.open("rb") as handle:
        pickle.load(handle) if writer == "pickle.dump" else torch.load(handle, weights_only=False)
    assert sentinel.exists()


@pytest.mark.parametrize("suffix", [".pt", ".bin", ".ckpt", ".pth"])
def test_legitimate_pickle_state_dict_loads_only_when_allowed(tmp_path, suffix):
    state = {"logits": torch.tensor([0.5, -1.0]), "means": torch.arange(4.0).reshape(2, 2)}
    path = tmp_path / f"model{suffix}"
    torch.save(state, path)
    with pytest.raises(UnsafeFormatError):
        read_tensors(path)
    loaded = read_tensors(path, allow_pickle=True)
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    torch.save({"state_dict": state, "epoch": 3}, path)  # a Lightning-style wrapper
    assert set(read_tensors(path, allow_pickle=True)) == set(state)


def test_truncated_or_odd_pickle_checkpoint_is_corrupt(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"means": torch.zeros(64)}, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CorruptWeightsError, match="model.pt"):
        read_tensors(path, allow_pickle=True)
    torch.save([torch.zeros(2)], path)  # a list, not a name -> tensor mapping
    with pytest.raises(CorruptWeightsError, match="model.pt"):
        read_tensors(path, allow_pickle=True)


def test_rename_state_dict_accounts_for_every_tensor_by_name():
    from zoo_core.errors import StateDictMismatchError
    from zoo_core.weights.renaming import current_diffusers_name, rename_state_dict

    expected = {"attn.q.weight": (2, 2), "conv.weight": (3,)}

    def file_name(name: str) -> str:
        return name.replace("attn.q.", "mid.attentions.0.to_q.").replace("conv.", "conv_in.")

    state = {"mid.attentions.0.query.weight": torch.ones(2, 2), "conv_in.weight": torch.ones(3)}
    out = rename_state_dict(state, expected, file_name, source="f", alias=current_diffusers_name)
    assert set(out) == set(expected) and out["conv.weight"] is state["conv_in.weight"]
    bad = {"mid.attentions.0.to_q.weight": torch.ones(2, 3), "extra": torch.ones(1),
           "mid.attentions.0.query.weight": torch.ones(2, 2)}  # fmt: skip
    with pytest.raises(StateDictMismatchError) as caught:
        rename_state_dict(bad, expected, file_name, source="f", alias=current_diffusers_name)
    message = str(caught.value)
    for part in ("conv_in.weight", "extra", "a second copy of mid.attentions.0.to_q.weight",
                 "(2, 3)"):  # fmt: skip
        assert part in message, message
