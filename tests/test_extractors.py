"""Feature extractors: the FID Inception against pytorch-fid and torch-fidelity, timm
backbones against timm, on randomly initialised weights; how their weights are found."""

from __future__ import annotations

import hashlib
import http.server
import math
import sys
import threading
from types import SimpleNamespace

import huggingface_hub.constants
import pytest
import torch

from zoo_core.builtin.extractors import inception as inception_module
from zoo_core.builtin.extractors.inception import FID_WEIGHTS_FILE, load_inception_fid
from zoo_core.builtin.extractors.timm_extractor import load_timm_extractor
from zoo_core.errors import (
    ChecksumMismatchError,
    ConfigError,
    ExtractorUnavailableError,
    UnknownExtractorError,
    WeightsError,
)
from zoo_core.evaluation.extractors import get_extractor
from zoo_core.extractor import preprocess
from zoo_core.testing import build_hub_cache

COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


def assert_close(got: torch.Tensor, want: torch.Tensor, rel: float = 1e-5) -> None:
    """``max |got - want| <= rel * max |want|`` (and the same shape)."""
    assert got.shape == want.shape
    scale = want.abs().max().item()
    err = (got - want).abs().max().item()
    assert scale > 0 and err <= rel * scale, f"max abs diff {err:.3g}, max |want| {scale:.3g}"


# ------------------------------------------------------------------ the FID Inception
def random_inception_state(seed: int) -> dict[str, torch.Tensor]:
    """The FID Inception's tensors with random values that keep activations O(1):
    He-normal convolutions and batch-norm statistics near the identity, and an fc bias
    as large as its logits (so that leaving it out or not shows)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, tensor in inception_module.InceptionFID().state_dict().items():
        shape, kind = tensor.shape, name.rsplit(".", 1)[-1]
        if name.endswith("num_batches_tracked"):
            value = tensor
        elif name == "fc.weight":
            value = torch.randn(shape, generator=gen) / math.sqrt(shape[1])
        elif name == "fc.bias":
            value = torch.randn(shape, generator=gen)
        elif kind == "weight" and tensor.ndim == 4:  # conv
            value = torch.randn(shape, generator=gen) * math.sqrt(2.0 / shape[1:].numel())
        elif kind in ("weight", "running_var"):  # bn scale, variance
            value = torch.rand(shape, generator=gen) + 0.5
        else:  # bn bias, mean
            value = 0.1 * torch.randn(shape, generator=gen)
        state[name] = value.to(tensor.dtype)
    return state


@pytest.fixture(scope="module")
def fid_weights(tmp_path_factory):
    """A random FID Inception state dict saved as a .pth, and its sha256."""
    state = random_inception_state(seed=0)
    path = tmp_path_factory.mktemp("fid") / FID_WEIGHTS_FILE
    torch.save(state, path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return SimpleNamespace(state=state, path=path, sha=sha)


@pytest.fixture
def pinned(fid_weights, monkeypatch):
    """The zoo pins the random file's hash instead of the real one."""
    monkeypatch.setattr(inception_module, "FID_WEIGHTS_SHA256", fid_weights.sha)
    return fid_weights


@pytest.fixture(scope="module")
def ours(fid_weights):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inception_module, "FID_WEIGHTS_SHA256", fid_weights.sha)
        return load_inception_fid(fid_weights.path)


def pytorch_fid_net(state: dict[str, torch.Tensor], resize_input: bool) -> torch.nn.Module:
    """pytorch-fid's InceptionV3 (pool3 block) with ``state`` instead of its download."""
    from pytorch_fid import inception as pfid

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pfid, "load_state_dict_from_url", lambda url, **kwargs: dict(state))
        net = pfid.InceptionV3(
            [3], resize_input=resize_input, normalize_input=True, use_fid_inception=True
        )
    return net.eval()


def test_features_equal_pytorch_fid(ours, fid_weights):
    assert ours.weights_sha256 == fid_weights.sha and not ours.training
    assert (ours.feature_dim, ours.num_classes, ours.input_size) == (2048, 1008, (299, 299))
    x = torch.rand(3, 3, 299, 299, generator=torch.Generator().manual_seed(1))
    reference = pytorch_fid_net(fid_weights.state, resize_input=False)
    with torch.no_grad():
        want = reference(x)[0].flatten(1)  # (N, 2048)
        got = ours(x)
    assert got["features"].dtype == torch.float32
    assert_close(got["features"], want)
    assert want.std(dim=0).mean() > 1e-2 * want.abs().mean()  # the images differ in features


def test_bilinear_preprocessing_equals_pytorch_fid_resize(ours, fid_weights):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    reference = pytorch_fid_net(fid_weights.state, resize_input=True)
    with torch.no_grad():
        want = reference(x)[0].flatten(1)
        got = ours(preprocess(x, ours, "bilinear"))["features"]
    assert_close(got, want)


def test_logits_are_torch_fidelitys_unbiased_logits(ours, fid_weights):
    """torch-fidelity scores the Inception Score on ``logits_unbiased`` (its default ``isc``
    feature), as the original IS code does; its uint8 input ``u`` scaled by ``(u - 128) /
    128`` is ours ``2 (u / 256) - 1``."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    assert FeatureExtractorInceptionV3.get_default_feature_layer_for_metric("isc") == (
        "logits_unbiased"
    )
    reference = FeatureExtractorInceptionV3(
        "inception-v3-compat",
        ["2048", "logits_unbiased", "logits"],
        feature_extractor_weights_path=str(fid_weights.path),
    )
    u = torch.randint(0, 256, (2, 3, 299, 299), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        features, unbiased, biased = reference(u.to(torch.uint8))
        got = ours(u.float() / 256)
    assert_close(got["features"], features)
    assert_close(got["logits"], unbiased)
    assert_close(got["logits"] + ours.fc.bias, biased)
    assert (biased - unbiased).abs().max() > 0.5  # the bias is not negligible here


def test_missing_file_offline_says_where_and_how(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("ZOO_NETWORK", "never")
    monkeypatch.setenv("ZOO_EXTRACTOR_DIR", str(tmp_path / "extractors"))
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(ExtractorUnavailableError) as info:
        get_extractor("inception-fid")
    message = str(info.value)
    where = [str(tmp_path / "extractors"), str(tmp_path / "cache")]
    how = [inception_module.FID_WEIGHTS_URL, "ZOO_EXTRACTOR_DIR", "ZOO_NETWORK=never"]
    for part in [FID_WEIGHTS_FILE, *where, *how]:
        assert part in message
    assert "\n" not in message
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the zoo's offline switch covers it too
    monkeypatch.delenv("ZOO_NETWORK")
    with pytest.raises(ExtractorUnavailableError, match="HF_HUB_OFFLINE"):
        load_inception_fid()
    with pytest.raises(ExtractorUnavailableError, match="nowhere.pth"):
        load_inception_fid(tmp_path / "nowhere.pth")
    assert no_network.attempts == []
    assert not (tmp_path / "cache").exists()


def test_lookup_order_and_checksum(pinned, tmp_path, monkeypatch, no_network):
    """ZOO_EXTRACTOR_DIR first, then the cache; a file that is not the pinned one is an
    error naming it (never unpickled, never skipped for the next place)."""
    folder, cache = tmp_path / "extractors", tmp_path / "cache"
    (cache / "extractors").mkdir(parents=True)
    (cache / "extractors" / FID_WEIGHTS_FILE).write_bytes(pinned.path.read_bytes())
    monkeypatch.setenv("ZOO_CACHE_DIR", str(cache))
    monkeypatch.setenv("ZOO_EXTRACTOR_DIR", str(folder))
    monkeypatch.setenv("ZOO_NETWORK", "never")
    assert get_extractor("inception-fid").weights_sha256 == pinned.sha  # from the cache
    folder.mkdir()
    (folder / FID_WEIGHTS_FILE).write_bytes(b"not the FID Inception")
    loads = []
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: loads.append(args))
    with pytest.raises(ChecksumMismatchError) as info:
        get_extractor("inception-fid")
    assert str(folder / FID_WEIGHTS_FILE) in str(info.value)
    assert info.value.expected == pinned.sha
    assert info.value.actual == hashlib.sha256(b"not the FID Inception").hexdigest()
    with pytest.raises(ChecksumMismatchError):
        load_inception_fid(folder)  # an explicit folder or file is verified the same way
    assert loads == [] and no_network.attempts == []


class Server:
    """A local HTTP server that answers every GET with ``body``, announcing ``length``."""

    def __init__(self):
        self.body, self.length = b"", None
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(server.length or len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{FID_WEIGHTS_FILE}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server(pinned, tmp_path, monkeypatch):
    serving = Server()
    monkeypatch.setattr(inception_module, "FID_WEIGHTS_URL", serving.url)
    monkeypatch.setenv("no_proxy", "*")  # urllib would send 127.0.0.1 to a proxy otherwise
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    yield serving
    serving.httpd.shutdown()
    serving.httpd.server_close()


def test_download_keeps_only_a_verified_whole_file(server, pinned, tmp_path):
    data = pinned.path.read_bytes()
    cached = tmp_path / "cache" / "extractors"
    server.body, server.length = data[: len(data) // 2], len(data)  # the connection drops
    with pytest.raises(ExtractorUnavailableError, match="IncompleteRead"):
        load_inception_fid()
    assert not cached.exists() or list(cached.iterdir()) == []
    corrupt = bytearray(data)
    corrupt[len(data) // 2] ^= 0x01
    server.body, server.length = bytes(corrupt), None
    with pytest.raises(ChecksumMismatchError, match="nothing was kept"):
        load_inception_fid()
    assert not cached.exists() or list(cached.iterdir()) == []
    server.body = data
    net = load_inception_fid()
    assert net.weights_sha256 == pinned.sha
    assert [path.name for path in cached.iterdir()] == [FID_WEIGHTS_FILE]  # no temp left
    assert (cached / FID_WEIGHTS_FILE).read_bytes() == data


# ----------------------------------------------------------------------- timm backbones
@pytest.fixture
def timm_hub(tmp_path, monkeypatch):
    """Writes random timm weights into a hand-built, offline Hugging Face cache."""
    cache = tmp_path / "hub"
    monkeypatch.setenv("ZOO_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # As in test_weights_sources' `hub` fixture: only the zoo keeps huggingface_hub offline,
    # and its once-per-process agent registry is forgotten so a network call would show.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    agent = sys.modules.get("huggingface_hub.utils._detect_agent")
    if agent is not None:
        monkeypatch.setattr(agent, "_registry", None, raising=False)

    def write(name: str, seed: int = 0, drop: str | None = None):
        import safetensors.torch
        import timm

        torch.manual_seed(seed)
        state = timm.create_model(name, pretrained=False).state_dict()
        state.pop(drop, None)
        data = safetensors.torch.save(state)
        build_hub_cache(cache, f"timm/{name}", COMMIT, {"model.safetensors": data})
        return state, hashlib.sha256(data).hexdigest()

    return write


def timm_reference(arch: str, state: dict, classifier: str, **kwargs) -> torch.nn.Module:
    """timm's model without classifier, loaded strictly with ``state`` (ViTs through
    timm's checkpoint filter, which resamples the position embeddings)."""
    import timm
    from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn

    model = timm.create_model(arch, num_classes=0, **kwargs)
    state = {k: v for k, v in state.items() if not k.startswith(classifier + ".")}
    if isinstance(model, VisionTransformer):
        state = checkpoint_filter_fn(state, model)
    model.load_state_dict(state, strict=True)
    return model.eval()


@pytest.mark.parametrize(
    ("spec", "classifier", "size", "mean", "model_kwargs"),
    [
        ("test_vit.r160_in1k", "head", (160, 160), 0.5, {}),
        ("vit_small_patch14_dinov2.lvd142m@224", "head", (224, 224), 0.485, {"img_size": 224}),
        ("test_efficientnet.r160_in1k@96x112", "classifier", (96, 112), 0.485, {}),
    ],
)
def test_timm_features_equal_timms_model(
    timm_hub, no_network, spec, classifier, size, mean, model_kwargs
):
    name = spec.partition("@")[0]
    state, sha = timm_hub(name)
    ext = get_extractor(f"timm:{spec}")
    assert (ext.id, ext.weights_sha256, ext.input_size) == (f"timm:{spec}", sha, size)
    assert ext.num_classes is None and not ext.training
    assert ext.mean.flatten()[0].item() == pytest.approx(mean)
    reference = timm_reference(name.partition(".")[0], state, classifier, **model_kwargs)
    if model_kwargs:  # the checkpoint's 37x37 grid of position embeddings became 16x16
        assert state["pos_embed"].shape[1] == 1 + 37**2
        assert reference.pos_embed.shape[1] == 1 + 16**2
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        got = ext(x)
        want = reference((x - ext.mean) / ext.std)
    assert set(got) == {"features"} and got["features"].shape == (2, ext.feature_dim)
    assert_close(got["features"], want)
    assert no_network.attempts == []


def test_timm_weights_load_strictly(timm_hub, no_network):
    timm_hub("test_vit.r160_in1k", drop="blocks.0.attn.qkv.weight")
    with pytest.raises(WeightsError, match="blocks.0.attn.qkv.weight") as info:
        load_timm_extractor("test_vit.r160_in1k")
    assert "\n" not in str(info.value)


def test_timm_weights_absent_offline(timm_hub, no_network):
    with pytest.raises(ExtractorUnavailableError) as info:
        get_extractor("timm:test_vit.r160_in1k@128")
    message = str(info.value)
    assert "model.safetensors of timm/test_vit.r160_in1k@main" in message
    assert "HF_HUB_OFFLINE" in message and "\n" not in message
    assert no_network.attempts == []


def test_timm_unknown_names():
    with pytest.raises(UnknownExtractorError, match="'vit_tiny_patch16_224'"):
        get_extractor("timm:vit_tiny_patch16_22")
    with pytest.raises(UnknownExtractorError, match="r160_in1k"):
        load_timm_extractor("test_vit.no_such_tag")
    with pytest.raises(ConfigError, match="size"):
        load_timm_extractor("test_vit.r160_in1k@big")
