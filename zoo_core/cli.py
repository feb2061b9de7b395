"""The ``zoo`` command line (also ``python -m zoo_core``).

Exit status: 0 on success, 2 on a usage error (bad option or argument), 1 on any other
error, which is printed as one line (the traceback only with ``--debug`` or ``ZOO_DEBUG=1``).
Listing and card commands import no torch: the commands that load, train or evaluate import
those services when they run.
"""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from zoo_core import __version__
from zoo_core.card import BundledWeights
from zoo_core.catalog import architecture_class, get_catalog
from zoo_core.devices import default_device, resolve_device
from zoo_core.errors import CapabilityError, ConfigError, OutputPathError, ZooError
from zoo_core.outputs import check_output_path, save_samples
from zoo_core.plugin_manager import plugins
from zoo_core.protocol import Preprocessing, get_protocol, list_protocols
from zoo_core.registry import get_registry, list_models, model_card
from zoo_core.scaffold import new_plugin
from zoo_core.settings import get_settings


def _console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


class ZooGroup(click.Group):
    """Turns errors into one line and an exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            if _debug(ctx):
                raise
            kind = "" if isinstance(exc, ZooError) else f"unexpected {type(exc).__name__}: "
            hint = "" if isinstance(exc, ZooError) else " (rerun with --debug for the traceback)"
            message = " ".join(str(exc).split()) or type(exc).__name__
            click.echo(f"error: {kind}{message}{hint}", err=True)
            ctx.exit(1)


def _debug(ctx: click.Context) -> bool:
    if ctx.find_root().params.get("debug"):
        return True
    try:
        return get_settings().debug
    except ZooError:  # the broken setting is what is being reported
        return False


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks (also ZOO_DEBUG=1).")
@click.version_option(__version__, prog_name="zoo")
def cli(debug: bool) -> None:
    """zoo: a plugin-based zoo of generative models."""
    if debug:
        import logging

        logging.basicConfig(level=logging.DEBUG)


@cli.command("list")
@click.argument("pattern", required=False)
@click.option("--family", help="Only this family (diffusion, gan, vae, ...).")
@click.option("--dataset", help="Only models trained on this dataset.")
@click.option("--modality", help="Only this modality (image, audio, sequence, points, text).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(
    pattern: str | None, family: str | None, dataset: str | None, modality: str | None, as_json
):
    """List model ids, optionally matching an fnmatch PATTERN (e.g. 'ddpm-*')."""
    ids = list_models(pattern, family=family, dataset=dataset, modality=modality)
    cards = [model_card(model_id) for model_id in ids]
    if as_json:
        rows = [
            {k: getattr(c, k) for k in ("id", "family", "architecture", "dataset", "modality")}
            for c in cards
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table("id", "family", "architecture", "dataset", "modality", "weights")
    for card in cards:
        table.add_row(
            card.id, card.family, card.architecture, card.dataset, card.modality,
            _weights_label(card),
        )  # fmt: skip
    _console().print(table)


def _weights_label(card) -> str:
    if card.weights is None:
        return "none"
    if isinstance(card.weights, BundledWeights):
        return "bundled"
    return f"hub {card.weights.hub}"


@cli.command("info")
@click.argument("model_id")
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
def info_command(model_id: str, as_json: bool):
    """Show the model card of MODEL_ID."""
    card = model_card(model_id)
    data = card.model_dump(mode="json", exclude_none=True)
    data["source"] = get_registry().sources.get(card.id)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    from rich.table import Table

    table = Table(show_header=False, title=card.id)
    for key, value in data.items():
        if key == "id":
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        table.add_row(key, text)
    _console().print(table)


@cli.command("download")
@click.argument("model_id")
@click.option("--revision", help="A branch, tag or commit of the Hub source.")
@click.option("--force", is_flag=True, help="Fetch Hub files again even when cached.")
def download_command(model_id: str, revision: str | None, force: bool):
    """Fetch and verify the weights of MODEL_ID into the local cache."""
    from zoo_core.loading import download  # deferred: imports torch, which `zoo list` must not

    for name, path in download(model_id, revision=revision, force=force).items():
        click.echo(f"{name}\t{path}")


def _parse_sets(values: tuple[str, ...]) -> dict[str, Any]:
    """``key=value`` pairs; a value that parses as JSON (``50``, ``0.5``, ``1e3``, ``true``,
    ``null``, ``[1, 2]``) is that, anything else is the text itself (``ddim``, ``no``)."""
    options: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint="--set")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        options[key.strip()] = value
    return options


@cli.command("sample")
@click.argument("model_id")
@click.option("-n", "n", type=click.IntRange(min=1), default=16, show_default=True,
              help="Number of samples.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the call.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output file; its extension and the modality set the format.")  # fmt: skip
@click.option("--batch-size", type=click.IntRange(min=1), help="Samples per forward pass.")
@click.option("--device", help="Device to sample on (cpu, cuda, cuda:1, ...).")
@click.option("--weights", type=click.Path(path_type=Path), help="Local weights file or folder.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="A sampling option of the model (repeatable), e.g. --set steps=50.")  # fmt: skip
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def sample_command(
    model_id: str,
    n: int,
    seed: int,
    output: Path,
    batch_size: int | None,
    device: str | None,
    weights: Path | None,
    sets: tuple[str, ...],
    progress: bool,
):
    """Draw N samples of MODEL_ID with SEED and write them to OUTPUT."""
    options = _parse_sets(sets)
    card = model_card(model_id)
    try:
        check_output_path(output, card.modality)
    except OutputPathError as exc:
        raise click.BadParameter(str(exc), param_hint="-o/--output") from None

    cls = architecture_class(card.architecture, distribution=card.plugin)
    if "sample" not in cls.capabilities:  # before fetching weights it could not use
        reason = cls.unsupported.get("sample")
        raise CapabilityError(card.id, "sample", cls.capabilities, reason)
    try:  # every check before the (possibly long) load
        opts = cls.check_sample_options(options, card.id)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--set") from None
    _check_device(device)
    from zoo_core.loading import load  # deferred: imports torch, which `zoo list` must not

    model = load(model_id, device=device, weights=weights)
    samples = model.sample(
        n, seed=seed, batch_size=batch_size, progress=progress, **opts.model_dump()
    )
    path = save_samples(samples, output, modality=model.modality, sample_rate=model.sample_rate)
    click.echo(f"wrote {n} samples of {card.id} (seed {seed}) to {path}")


@cli.command("train")
@click.argument("recipe", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run directory (checkpoints, metrics, samples, the final model).")  # fmt: skip
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe key (repeatable), e.g. --set train.steps=100.")  # fmt: skip
@click.option("--stop-after", type=click.IntRange(min=1),
              help="Run at most this many steps now, then checkpoint and stop.")  # fmt: skip
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def train_command(recipe: Path, out: Path, resume: bool, sets, stop_after, progress):
    """Train the model of RECIPE into --out (exit 75 when stopped by SIGTERM)."""
    # Deferred: the training loop imports torch, which `zoo list` must not.
    from zoo_core.training import EXIT_INTERRUPTED, load_recipe, train

    result = train(
        load_recipe(recipe, _parse_sets(sets)),
        out,
        resume=resume,
        stop_after=stop_after,
        progress=progress,
    )
    for skipped in result.skipped_checkpoints:
        click.echo(f"warning: skipped checkpoint {skipped}", err=True)
    saved = (
        f"checkpoint of step {result.checkpoint_step} committed in {out}"
        if result.checkpoint_step is not None
        else "no checkpoint committed"
    )
    if result.status == "interrupted":
        click.echo(f"interrupted at step {result.step}; {saved}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if result.status == "stopped":
        click.echo(f"stopped at step {result.step}; {saved}; continue with --resume")
        return
    loss = "n/a" if result.final_loss is None else f"{result.final_loss:.6g}"
    where = f"; model in {result.model_dir}" if result.model_dir is not None else ""
    click.echo(f"trained {result.step} steps; final loss {loss}{where}")


def _check_device(device: str | None) -> None:
    if device is not None:
        try:
            resolve_device(device)
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--device") from None


def _format_value(value: Any) -> str:
    return "n/a" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)


@cli.command("eval")
@click.argument("model_id")
@click.option(
    "--protocol",
    "protocol_name",
    required=True,
    help="Protocol name (`zoo protocols` lists them).",
)
@click.option("-n", "--n", "n", type=click.IntRange(min=1),
              help="Samples (or examples) instead of the protocol's count.")  # fmt: skip
@click.option(
    "--allow-small",
    is_flag=True,
    help="Allow --n below the protocol's minimum (recorded under its own hash).",
)
@click.option("--device", help="Device (default: cuda when available, else cpu).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Append the provenance record to this results.jsonl.")  # fmt: skip
@click.option("--weights", type=click.Path(path_type=Path), help="Local weights file or folder.")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a sampling option of the protocol (a variant with its own hash).",
)
@click.option("--seed", type=click.IntRange(min=0), help="Sampling seed (default: the protocol's).")
@click.option("--no-cache", is_flag=True, help="Keep no sample shards on disk.")
@click.option("--progress/--no-progress", default=True, help="Show progress bars.")
def eval_command(model_id, protocol_name, n, allow_small, device, out, weights, sets, seed,
                 no_cache, progress):  # fmt: skip
    """Evaluate MODEL_ID under a protocol; print the metrics and append the record to --out."""
    # Deferred: the evaluation imports torch, which `zoo list` must not.
    from zoo_core.evaluation.results import append_record, read_records
    from zoo_core.evaluation.run import evaluate

    _check_device(device)
    if out is not None:
        read_records(out)  # a corrupt results file fails before the (long) evaluation
    record = evaluate(model_id, protocol_name, n=n, seed=seed, overrides=_parse_sets(sets),
                      device=device, weights=weights, allow_small=allow_small,
                      cache=not no_cache, progress=progress)  # fmt: skip
    if get_settings().rank != 0:  # under torchrun the main process reports
        return
    if out is not None:
        append_record(out, record)
    click.echo(f"{record.model} under {record.protocol.title} (hash {record.protocol_hash[:12]}):")
    figures = {**record.metrics, **record.speed.model_dump(exclude_none=True)}
    for name, value in figures.items():
        note = f"  (invalid: {record.invalid[name]})" if name in record.invalid else ""
        click.echo(f"  {name}: {_format_value(value)}{note}")
    for name, why in record.skipped.items():
        click.echo(f"  {name}: skipped ({why})")
    if not record.ok:
        click.echo(f"error: {record.error}", err=True)
        sys.exit(1)


@cli.command("push")
@click.argument("model_id")
@click.option("--repo", required=True, help="Hub repository ORG/NAME (created if missing).")
@click.option(
    "--weights",
    type=click.Path(path_type=Path),
    help="Upload these local weights (file or folder) instead of the card's.",
)
@click.option("--private", is_flag=True, help="Create the repository private.")
@click.option("--revision", help="Branch to commit to (default: the repository's default).")
@click.option("--message", help="Commit message.")
@click.option(
    "--dry-run",
    "dry_run",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the folder that would be uploaded into this directory; upload nothing.",
)
def push_command(model_id, repo, weights, private, revision, message, dry_run):
    """Upload MODEL_ID to the Hugging Face Hub as a save_pretrained folder with its model card,
    and print the registry card that loads it back (pinned to the new commit)."""
    import yaml

    # Deferred: publishing loads the model, which imports torch; `zoo list` must not.
    from zoo_core.publish import check_repo, push, stage

    check_repo(repo)
    if dry_run is not None:
        if dry_run.exists() and any(dry_run.iterdir()):
            raise ConfigError(f"--dry-run folder {dry_run} is not empty; give a new folder")
        folder = stage(model_id, dry_run, weights=weights)
        files = ", ".join(sorted(p.name for p in folder.iterdir()))
        click.echo(f"wrote {folder} ({files}); nothing uploaded")
        return
    card = push(model_id, repo, weights=weights, private=private, revision=revision,
                message=message)  # fmt: skip
    click.echo(f"uploaded {model_id} to https://huggingface.co/{repo}")
    click.echo("registry card for these weights:\n")
    click.echo(yaml.safe_dump({model_id: card}, sort_keys=False).rstrip())


@cli.command("new-plugin")
@click.argument("name")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder that receives the plugin's folder zoo-NAME.",
)
@click.option(
    "--no-checkpoint",
    is_flag=True,
    help="Skip training the tiny bundled checkpoint (scripts/make_checkpoint.py).",
)
def new_plugin_command(name: str, out: Path, no_checkpoint: bool):
    """Scaffold the plugin distribution zoo-NAME: pyproject with the zoo entry point,
    plugin.py, one architecture, its trainer, a card with a bundled checkpoint, tests that run
    the conformance kit, and a README."""
    folder = new_plugin(name, out, checkpoint=not no_checkpoint)
    click.echo(f"wrote {folder}; next: pip install -e '{folder}[test]' && pytest {folder}")


@cli.command("protocols")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def protocols_command(as_json: bool):
    """List the evaluation protocols: dataset, samples, extractor, metrics and hash."""
    protocols = [get_protocol(name) for name in list_protocols()]
    if as_json:
        rows = [{**p.model_dump(mode="json"), "hash": p.hash} for p in protocols]
        click.echo(json.dumps(rows, indent=2))
        return
    for p in protocols:
        extractor = p.extractor or "-"
        click.echo(f"{p.name}\t{p.modality}\t{p.dataset}/{p.split}\tn={p.n_samples}\t"
                   f"{extractor}\t{','.join(p.metrics)}\t{p.hash[:12]}")  # fmt: skip


@cli.group("stats")
def stats_group() -> None:
    """Reference statistics (cached features of a dataset split)."""


@stats_group.command("build")
@click.argument("dataset")
@click.option("--extractor", required=True, help="inception-fid, fashion-net or timm:<model>.")
@click.option("--split", default="train", show_default=True, help="The dataset split.")
@click.option(
    "--resize",
    type=click.Choice(["bilinear", "bicubic", "nearest", "none"]),
    default="bilinear",
    show_default=True,
    help="Resize to the extractor's input.",
)
@click.option(
    "-n", "--n", "n", type=click.IntRange(min=1), help="The first N examples (default: all)."
)
@click.option("--device", help="Device (default: cuda when available, else cpu).")
@click.option("--rebuild", is_flag=True, help="Recompute even when cached.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def stats_build_command(dataset, extractor, split, resize, n, device, rebuild, progress):
    """Compute (or find) the reference features of DATASET in an extractor's space."""
    # Deferred: the extractors import torch, which `zoo list` must not.
    from zoo_core.evaluation.extractors import get_extractor
    from zoo_core.evaluation.stats import reference_statistics

    _check_device(device)
    net = get_extractor(extractor, device=device or default_device())
    ref = reference_statistics(dataset, split, net, Preprocessing(resize=resize), n=n,
                               device=None, progress=progress, rebuild=rebuild)  # fmt: skip
    click.echo(f"{dataset}/{split}: {ref.features.shape[0]} examples, {ref.features.shape[1]}-d "
               f"{net.id} features; key {ref.key[:16]} in {ref.path}")  # fmt: skip


@cli.command("leaderboard")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder of results.jsonl, leaderboard.md, index.html and the grids.",
)
@click.option("--models", "pattern", help="Only model ids matching this glob pattern.")
@click.option("--protocol", "protocols", multiple=True, help="Only this protocol (repeatable).")
@click.option("--device", help="Device (default: cuda when available, else cpu).")
@click.option("--force", is_flag=True, help="Rerun evaluations that already have a record.")
@click.option(
    "-n", "--n", "n", type=click.IntRange(min=1), help="Samples instead of each protocol's."
)
@click.option("--allow-small", is_flag=True, help="Allow --n below a protocol's minimum.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True),
              help="Seconds per evaluation before it is recorded as failed.")  # fmt: skip
@click.option("--no-sweep", is_flag=True, help="Skip the sampler sweeps (FID-vs-NFE curves).")
@click.option("--progress/--no-progress", default=True, help="Show progress bars.")
def leaderboard_command(out, pattern, protocols, device, force, n, allow_small, timeout,
                        no_sweep, progress):  # fmt: skip
    """Run the missing evaluations and render leaderboard.md and index.html in --out."""
    # Deferred: the evaluation imports torch, which `zoo list` must not.
    from zoo_core.evaluation.leaderboard import run_leaderboard

    for name in protocols:
        get_protocol(name)  # an unknown name fails before any work
    _check_device(device)
    result = run_leaderboard(out, models=pattern, protocols=list(protocols) or None,
                             device=device, force=force, n=n, allow_small=allow_small,
                             timeout=timeout, sweep=not no_sweep, progress=progress)  # fmt: skip
    if result.pages is None:
        return
    failed = [r for r in result.ran if not r.ok]
    click.echo(
        f"{len(result.ran)} evaluations run ({len(failed)} failed), "
        f"{len(result.reused)} reused; wrote {result.pages[0]} and {result.pages[1]}"
    )
    for record in failed:
        click.echo(f"  failed: {record.model} / {record.protocol.title}: {record.error}",
                   err=True)  # fmt: skip


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins_command(as_json: bool):
    """List the plugins the zoo found, with their status and errors."""
    infos = plugins()
    if as_json:
        click.echo(json.dumps([asdict(info) for info in infos], indent=2))
        return
    _console().print(_plugin_table(infos))


def _plugin_table(infos):
    from rich.table import Table

    table = Table("plugin", "distribution", "version", "status", "error")
    for info in infos:
        table.add_row(info.name, info.distribution, info.version, info.status, info.error or "")
    return table


@cli.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def doctor_command(as_json: bool):
    """Versions, devices, plugins, cache directories and the network policy."""
    settings = get_settings()
    get_catalog().probe()  # reads every hook, so a plugin that fails only when called shows
    infos = plugins()
    registry_errors: dict[str, str] = {}
    try:
        registry = get_registry()
        registry_errors = {name: str(err) for name, err in registry.errors.items()}
        models = len(registry.cards)
    except ZooError as exc:
        registry_errors = {"registry": str(exc)}
        models = 0
    report = {
        "versions": _versions(),
        "devices": _devices(),
        "plugins": [asdict(info) for info in infos],
        "models": models,
        "registry_errors": registry_errors,
        "hub_cache": str(settings.hub_cache or _hf_default_cache()),
        "zoo_cache": str(settings.cache_dir),
        "network": settings.effective_network,
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    console = _console()
    console.print(
        "[bold]versions[/bold]: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    )
    console.print("[bold]devices[/bold]: " + ", ".join(report["devices"]))
    console.print(f"[bold]network policy[/bold]: {report['network']}")
    console.print(f"[bold]hub cache[/bold]: {report['hub_cache']}")
    console.print(f"[bold]zoo cache[/bold]: {report['zoo_cache']}")
    console.print(f"[bold]models[/bold]: {models}")
    for name, error in registry_errors.items():
        console.print(f"[red]registry error[/red] {name}: {error}")
    console.print(_plugin_table(infos))


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version(), "zoo-core": __version__}
    for name in ("torch", "pluggy", "huggingface-hub", "safetensors", "pydantic", "timm"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _devices() -> list[str]:
    import torch  # the doctor reports the devices; `zoo list` imports no torch

    devices = [f"cpu ({torch.get_num_threads()} threads)"]
    if torch.cuda.is_available():
        devices += [
            f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())
        ]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def _hf_default_cache() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``zoo`` console script."""
    import warnings

    def one_line(message, category, filename, lineno, file=None, line=None):
        click.echo(f"warning: {' '.join(str(message).split())}", err=True)

    warnings.showwarning = one_line  # the CLI's warnings read like its errors
    cli.main(args=argv, prog_name="zoo")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
