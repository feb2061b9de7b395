"""The evaluation harness: protocols, the shared sampling pass and its shard cache,
results files, bad input, and torchrun sharding equal to one process."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from pydantic import BaseModel, ConfigDict

import zoo_core as zoo
from zoo_core.errors import (
    ConfigError,
    EvaluationTimeoutError,
    ResultsFileError,
    TooFewSamplesError,
    UnknownProtocolError,
)
from zoo_core.evaluation.harness import Evaluation
from zoo_core.evaluation.results import append_record, read_records
from zoo_core.evaluation.run import evaluate, resolve_protocol
from zoo_core.generator import Generator
from zoo_core.protocol import Protocol, get_protocol, list_protocols
from zoo_core.record import EvaluationRecord


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def ring():
    return zoo.load("gmm-ring8")


def small_modes(n: int = 1000, batch: int = 250) -> Protocol:
    return get_protocol("ring8-modes").replace(n_samples=n, min_samples=n, batch_size=batch)


class Counting:
    """Counts the samples a model draws (wraps ``sample``)."""

    def __init__(self, model, monkeypatch, delay: float = 0.0):
        self.calls: list[tuple[int, int]] = []
        original = model.sample

        def sample(n, *, start=0, **kwargs):
            self.calls.append((start, n))
            time.sleep(delay)
            return original(n, start=start, **kwargs)

        monkeypatch.setattr(model, "sample", sample)


# --------------------------------------------------------------------------- protocols
def test_shipped_protocols_load_and_cover_the_families():
    names = list_protocols()
    for wanted in ("fashion-fid-10k", "cifar10-fid-50k", "cifar10-fd-dinov2-50k", "ring8-modes",
                   "grid25-modes", "fashion-mnist-bpd", "cifar10-bpd", "fortunes-bpd",
                   "sunspots-bpd"):  # fmt: skip
        assert wanted in names
    assert {get_protocol(n).modality for n in names} >= {"image", "points", "text", "sequence"}
    fid = get_protocol("cifar10-fid-50k")
    assert fid.n_samples == 50000 and fid.split == "train" and fid.extractor == "inception-fid"
    assert fid.extractor_sha256.startswith("6726825d0af5")
    assert len({get_protocol(n).hash for n in names}) == len(names)


def test_protocol_hash_covers_what_the_numbers_depend_on():
    p = get_protocol("fashion-fid-10k")
    assert p.hash == get_protocol("fashion-fid-10k").hash and len(p.hash) == 64
    # Cosmetic fields do not change it ...
    assert p.replace(description="other words").hash == p.hash
    # ... everything a number depends on does.
    for change in ({"n_samples": 20000}, {"seed": 1}, {"split": "train"}, {"kid_subsets": 50},
                   {"preprocessing": {"resize": "bilinear", "quantize": True}},
                   {"sample_options": {"diffusion": {"sampler": "ddim", "steps": 20}}},
                   {"extractor_sha256": "0" * 64}, {"autocast": "bfloat16"}):  # fmt: skip
        assert p.replace(**change).hash != p.hash, change


def test_protocol_variants_are_sampler_sweeps_with_their_own_hashes():
    p = get_protocol("fashion-fid-10k")
    variants = p.variants("diffusion")
    assert [v.variant for v in variants][:2] == ["ddim-10", "ddim-20"]
    assert all(v.options_for("diffusion")["sampler"] in ("ddim", "dpm-solver++") for v in variants)
    assert len({v.hash for v in variants} | {p.hash}) == len(variants) + 1
    assert p.variants("gan") == []


def test_unknown_protocol_suggests_the_closest():
    with pytest.raises(UnknownProtocolError, match="did you mean 'fashion-fid-10k'"):
        get_protocol("fashion-fid-10")


def test_bad_protocol_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match="n_samples"):
        get_protocol("ring8-modes").replace(n_samples=0)
    with pytest.raises(ConfigError, match="need an extractor"):
        resolve_protocol(get_protocol("fashion-fid-10k").replace(extractor=None))


def test_fewer_samples_than_the_minimum_need_allow_small():
    with pytest.raises(TooFewSamplesError, match="--allow-small"):
        resolve_protocol("fashion-fid-10k", n=500)
    small = resolve_protocol("fashion-fid-10k", n=500, allow_small=True)
    assert small.n_samples == 500 and small.hash != get_protocol("fashion-fid-10k").hash


# --------------------------------------------------------------------------- start index
@pytest.mark.numerics
def test_sample_start_draws_a_slice_of_the_larger_call(ring):
    whole = ring.sample(20, seed=3)
    # Another batch shape: equal up to the rounding of its kernels (exp's vectorized and
    # scalar paths split a tensor by its size).
    torch.testing.assert_close(ring.sample(7, seed=3, start=5), whole[5:12], rtol=0, atol=1e-6)
    torch.testing.assert_close(
        ring.sample(7, seed=3, start=5, batch_size=2), whole[5:12], rtol=0, atol=1e-6
    )
    assert not torch.allclose(ring.sample(7, seed=3, start=6), whole[5:12], rtol=0, atol=1e-6)
    with pytest.raises(ConfigError, match="start"):
        ring.sample(2, seed=0, start=-1)


# --------------------------------------------------------------------------- the sampling pass
def test_modes_of_the_bundled_ring_model(ring):
    record = evaluate(ring, "ring8-modes", device="cpu")
    m = record.metrics
    # The bundled mixture was fitted to ring8: every mode is captured, almost every sample
    # is within 3 sigma, and the mode histogram is close to uniform.
    assert m["modes"] == 8 and m["high_quality"] > 0.95 and 0 <= m["reverse_kl"] < 0.01
    assert record.status == "ok" and record.n_samples == 2500
    assert record.speed.nfe == 1 and record.speed.samples_per_s > 0
    assert record.protocol_hash == get_protocol("ring8-modes").hash
    assert record.weights_sha256 == {
        "model.safetensors": zoo.model_card("gmm-ring8").weights.sha256
    }


def test_an_interrupted_run_resumes_from_its_shards(ring, monkeypatch, cache):
    protocol = small_modes()
    counter = Counting(ring, monkeypatch)
    first = evaluate(ring, protocol, device="cpu")
    assert sorted(counter.calls)[:4] == [(0, 250), (250, 250), (500, 250), (750, 250)]
    shards = sorted((cache / "samples").rglob("shard-*.safetensors"))
    assert len(shards) == 4
    # A lost shard and a corrupt one are drawn again; the others are read back.
    shards[1].unlink()
    shards[2].write_bytes(shards[2].read_bytes()[:-7] + b"garbage")
    counter.calls.clear()
    again = evaluate(ring, protocol, device="cpu")
    assert sorted(c for c in counter.calls if c[0] < 1000) == [(250, 250), (500, 250)]
    assert again.metrics == first.metrics


def test_a_timeout_stops_between_shards_and_the_rerun_resumes(ring, monkeypatch):
    protocol = small_modes()
    counter = Counting(ring, monkeypatch, delay=0.5)
    with pytest.raises(EvaluationTimeoutError, match="resume"):
        evaluate(ring, protocol, device="cpu", timeout=0.25)
    assert counter.calls == [(0, 250)]  # the first shard is drawn, then the deadline stops it
    counter.calls.clear()
    evaluate(ring, protocol, device="cpu")
    assert sorted(c for c in counter.calls if c[0] < 1000) == [(250, 250), (500, 250), (750, 250)]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Broken(Generator):
    """Points with NaN for every seventh sample."""

    architecture: ClassVar[str] = "broken-points"
    Config: ClassVar[type[BaseModel]] = _Options
    modality: ClassVar[str] = "points"

    def sample_batch(self, noise, options):
        x = noise.randn(2)
        x[noise.indices % 7 == 0] = float("nan")
        return x


def test_nonfinite_samples_are_counted_and_the_metrics_marked_invalid():
    record = evaluate(Broken(_Options()), small_modes(700, 100), device="cpu")
    assert record.status == "failed" and record.error == "100 of 700 samples were NaN or Inf"
    assert record.invalid["modes"] == "100 of 700 samples were NaN or Inf"


def test_a_metric_needing_a_missing_capability_is_skipped_with_the_reason():
    protocol = get_protocol("ring8-bpd").replace(n_samples=100, batch_size=100)
    record = evaluate(Broken(_Options()), protocol, device="cpu")
    assert record.metrics == {}
    assert "lacks the capability log_prob" in record.skipped["bits_per_dim"]


@pytest.mark.numerics
def test_bits_per_dim_of_the_ring_model_is_its_exact_likelihood(ring):
    protocol = get_protocol("ring8-bpd").replace(n_samples=1000, batch_size=300)
    record = evaluate(ring, protocol, device="cpu")
    data = zoo_data("ring8", "test").x[:1000]
    expected = ring.bits_per_dim(data).double().mean().item()
    assert record.metrics["bits_per_dim"] == pytest.approx(expected, rel=1e-12)


def zoo_data(name, split):
    from zoo_core.data import load_dataset

    return load_dataset(name, split=split)


def test_a_modality_mismatch_is_refused(ring):
    with pytest.raises(ConfigError, match="for image models"):
        evaluate(ring, "fashion-fid-10k", device="cpu")


def test_evaluation_shares_one_sampling_pass(ring, monkeypatch):
    counter = Counting(ring, monkeypatch)
    run = Evaluation(ring, small_modes(), device="cpu", cache=False)
    run.generated()
    run.generated()
    assert len(counter.calls) == 4


# --------------------------------------------------------------------------- results files
def _record(i: int) -> dict:
    """A record's JSON, as ``results.jsonl`` holds it (the fields a record requires)."""
    protocol = get_protocol("ring8-modes")
    return {
        "format": 1,
        "model": f"m{i}",
        "protocol": protocol.model_dump(mode="json"),
        "protocol_name": protocol.name,
        "protocol_hash": protocol.hash,
        "n_samples": protocol.n_samples,
        "seed": protocol.seed,
        "metrics": {"fid": float(i)},
    }


def test_results_round_trip_and_nan_becomes_null(tmp_path):
    path = tmp_path / "r.jsonl"
    append_record(path, _record(1))
    append_record(path, {**_record(2), "metrics": {"fid": float("nan")}})
    records = read_records(path)
    assert all(isinstance(r, EvaluationRecord) for r in records)
    assert [r.model for r in records] == ["m1", "m2"] and records[1].metrics["fid"] is None


def _writer(path: str, start: int) -> None:
    for i in range(start, start + 40):
        append_record(path, _record(i))


def test_two_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "r.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), s)) for s in (0, 1000)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    models = sorted(r.model for r in read_records(path))
    assert models == sorted([f"m{i}" for i in range(40)] + [f"m{i}" for i in range(1000, 1040)])


def test_a_corrupt_or_newer_results_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "r.jsonl"
    append_record(path, _record(1))
    path.write_text(path.read_text() + '{"format": 1, "model": "cut"\n')
    before = path.read_bytes()
    with pytest.raises(ResultsFileError, match=r"r.jsonl:2 is not a JSON record"):
        read_records(path)
    with pytest.raises(ResultsFileError):
        append_record(path, _record(2))
    assert path.read_bytes() == before
    path.write_text(json.dumps({"format": 99, "model": "x"}) + "\n")
    with pytest.raises(ResultsFileError, match="format 99, newer"):
        read_records(path)
    path.write_text('["a list"]\n')
    with pytest.raises(ResultsFileError, match="no integer 'format'"):
        read_records(path)


# --------------------------------------------------------------------------- CLI and torchrun
def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    env["ZOO_CACHE_DIR"] = str(cache)
    return env


def test_zoo_eval_appends_a_provenance_record(tmp_path):
    out = tmp_path / "results.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "zoo_core", "eval", "gmm-ring8", "--protocol", "ring8-modes",
         "--out", str(out), "--no-progress"],
        capture_output=True, text=True, env=_env(tmp_path / "c"), timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "modes: 8" in result.stdout
    (record,) = read_records(out)
    assert record.model == "gmm-ring8" and record.versions["zoo-core"] == zoo.__version__
    assert record.environment.torch == torch.__version__
    assert record.protocol.n_samples == 2500 and record.seed == 0
    for key in ("weights_sha256", "protocol_hash", "metrics", "speed", "time", "environment"):
        assert getattr(record, key)
    bad = subprocess.run(
        [sys.executable, "-m", "zoo_core", "eval", "gmm-ring8", "--protocol", "ring8-mode"],
        capture_output=True, text=True, env=_env(tmp_path / "c"), timeout=120,
    )  # fmt: skip
    assert bad.returncode == 1 and "did you mean 'ring8-modes'" in bad.stderr


@pytest.mark.slow
def test_two_processes_under_torchrun_equal_one(tmp_path):
    """Sharded by global index, features all-gathered: the numbers of a 2-process gloo run
    equal a single-process run's, for the mixture metrics and for the feature metrics."""
    torchrun = Path(sys.executable).with_name("torchrun")
    runs = {
        "ring": ["gmm-ring8", "--protocol", "ring8-modes"],
        "fashion": ["ddpm-fashion", "--protocol", "fashion-fid-10k", "-n", "300",
                    "--allow-small", "--set", "steps=2"],
    }  # fmt: skip
    for name, args in runs.items():
        one, two = tmp_path / f"{name}-1.jsonl", tmp_path / f"{name}-2.jsonl"
        single = subprocess.run(
            [sys.executable, "-m", "zoo_core", "eval", *args, "--out", str(one), "--no-progress",
             "--no-cache"],
            capture_output=True, text=True, env=_env(tmp_path / "c1"), timeout=600,
        )  # fmt: skip
        assert single.returncode == 0, single.stderr[-3000:]
        double = subprocess.run(
            [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "zoo_core", "eval",
             *args, "--out", str(two), "--no-progress", "--no-cache"],
            capture_output=True, text=True, env=_env(tmp_path / "c2"), timeout=600,
        )  # fmt: skip
        assert double.returncode == 0, double.stderr[-3000:]
        (a,), (b,) = read_records(one), read_records(two)
        assert b.environment.world_size == 2 and a.environment.world_size == 1
        assert a.protocol_hash == b.protocol_hash
        # The features are bit-identical; the metrics' own float64 reductions may round in
        # another order with torchrun's one thread per process (KID moved by 1 ulp here).
        assert a.metrics.keys() == b.metrics.keys()
        for metric, value in a.metrics.items():
            assert b.metrics[metric] == pytest.approx(value, rel=1e-12, abs=1e-15), metric


# --------------------------------------------------------------------------- reference statistics
def test_reference_statistics_are_cached_by_content_and_a_corrupt_entry_is_rebuilt(cache, caplog):
    from zoo_core.evaluation.extractors import get_extractor
    from zoo_core.evaluation.stats import reference_statistics
    from zoo_core.protocol import Preprocessing

    net = get_extractor("fashion-net")
    none = Preprocessing(resize="none")
    first = reference_statistics("fashion-mnist", "test", net, none, n=300)
    assert first.features.shape == (300, net.feature_dim) and first.path.is_file()
    data = zoo_data("fashion-mnist", "test").x[:300]
    with torch.no_grad():
        direct = net(data)["features"]
    assert torch.allclose(first.features, direct, atol=1e-5)
    assert torch.allclose(first.mu, direct.double().mean(0), atol=1e-6)
    # Another count or preprocessing is another key; the same request reads the entry back.
    assert reference_statistics("fashion-mnist", "test", net, none, n=200).key != first.key
    again = reference_statistics("fashion-mnist", "test", net, none, n=300)
    assert again.key == first.key and torch.equal(again.features, first.features)
    # A flipped byte in the tensor data fails the checksum: rebuilt, with a warning.
    blob = bytearray(first.path.read_bytes())
    blob[-5] ^= 0xFF
    first.path.write_bytes(bytes(blob))
    with caplog.at_level("WARNING"):
        rebuilt = reference_statistics("fashion-mnist", "test", net, none, n=300)
    assert "corrupt" in caplog.text and torch.equal(rebuilt.features, first.features)
    assert read_entry_ok(first.path)


def read_entry_ok(path) -> bool:
    from zoo_core.evaluation.store import read_entry

    return read_entry(path) is not None


def test_zoo_stats_build(tmp_path):
    args = ["stats", "build", "fashion-mnist", "--extractor", "fashion-net", "--split", "test",
            "-n", "100", "--resize", "none", "--no-progress"]  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "zoo_core", *args], capture_output=True,
                            text=True, env=_env(tmp_path / "c"), timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "fashion-mnist/test: 100 examples, 128-d fashion-net features" in result.stdout
    assert len(list((tmp_path / "c" / "stats").glob("*.safetensors"))) == 1
    bad = subprocess.run([sys.executable, "-m", "zoo_core", "stats", "build", "fashion-mnist",
                          "--extractor", "inception-fd"], capture_output=True, text=True,
                         env=_env(tmp_path / "c"), timeout=120)  # fmt: skip
    assert bad.returncode == 1 and "did you mean 'inception-fid'" in bad.stderr


class Flat(Generator):
    """Uniform noise images that remember whether they were drawn under autocast."""

    architecture: ClassVar[str] = "flat-images"
    Config: ClassVar[type[BaseModel]] = _Options
    modality: ClassVar[str] = "image"
    autocast_seen: ClassVar[list[bool]] = []

    def sample_batch(self, noise, options):
        Flat.autocast_seen.append(torch.is_autocast_enabled("cpu"))
        return noise.rand(1, 28, 28)


def test_the_protocols_extractor_weights_are_checked_and_autocast_applied():
    from zoo_core.errors import ChecksumMismatchError

    small = resolve_protocol("fashion-fid-10k", n=250, allow_small=True)
    with pytest.raises(ChecksumMismatchError, match="fashion-net"):
        evaluate(Flat(_Options()), small.replace(extractor_sha256="0" * 64), device="cpu")
    Flat.autocast_seen.clear()
    record = evaluate(Flat(_Options()), small.replace(autocast="bfloat16"), device="cpu")
    assert Flat.autocast_seen and all(Flat.autocast_seen)
    assert record.protocol.autocast == "bfloat16" and record.metrics["fid"] > 0


def test_tensor_checksum_covers_zero_dim_tensors_and_their_shape():
    # BatchNorm's num_batches_tracked is a 0-d int64: a hand-built GAN's weights hash has it.
    from zoo_core.evaluation.store import tensor_checksum

    base = {"w": torch.ones(2, 3), "count": torch.tensor(5)}
    checksum = tensor_checksum(base)
    assert checksum == tensor_checksum({"count": torch.tensor(5), "w": torch.ones(2, 3)})
    assert checksum != tensor_checksum({**base, "count": torch.tensor(6)})
    assert checksum != tensor_checksum({**base, "count": torch.tensor([5])})  # shape counts
    assert checksum != tensor_checksum({**base, "w": torch.ones(3, 2)})


def test_overrides_name_the_variant_as_the_leaderboard_sweep_does():
    fid = get_protocol("fashion-fid-10k")
    (sweep, *_) = fid.variants("diffusion")
    asked = resolve_protocol(fid, overrides={"steps": 10, "sampler": "ddim"}, family="diffusion")
    assert (asked.variant, asked.hash) == (sweep.variant, sweep.hash) == ("ddim-10", sweep.hash)
    assert asked.hash != fid.hash
    # the same options for another family are another variant
    other = resolve_protocol(fid, overrides={"steps": 10, "sampler": "ddim"}, family="gan")
    assert other.hash != asked.hash


def test_a_protocol_metric_no_evaluator_computes_is_refused_with_the_closest():
    from zoo_core.errors import UnknownMetricError

    with pytest.raises(UnknownMetricError, match="did you mean 'modes'"):
        resolve_protocol(get_protocol("ring8-modes").replace(metrics=("mode",)))


def test_an_older_record_reads_and_a_bad_one_names_its_line_and_field(tmp_path):
    path = tmp_path / "r.jsonl"
    old = _record(1)  # written before status, lower_is_better, speed, environment existed
    path.write_text(json.dumps(old) + "\n")
    (record,) = read_records(path)
    assert record.ok and record.lower_is_better == {} and record.speed.samples_per_s is None
    assert record.protocol == get_protocol("ring8-modes").replace(nfe_sweep={})
    bad = {**_record(2), "metrics": {"fid": "twelve"}}
    path.write_text(json.dumps(old) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(ResultsFileError, match=r"r.jsonl:2 is not a valid result record: metrics"):
        read_records(path)
    with pytest.raises(ResultsFileError, match="format 2, newer"):
        EvaluationRecord.parse({**old, "format": 2}, "x")


def test_a_record_line_sorts_its_keys_and_writes_non_finite_numbers_as_null():
    record = EvaluationRecord.parse({**_record(3), "metrics": {"b": float("inf"), "a": 1.5}}, "x")
    line = record.line()
    assert line.endswith("\n") and json.loads(line)["metrics"] == {"a": 1.5, "b": None}
    keys = list(json.loads(line))
    assert keys == sorted(keys) and "nfe_sweep" not in json.loads(line)["protocol"]
    assert EvaluationRecord.parse(json.loads(line), "y").metrics == {"a": 1.5, "b": None}
