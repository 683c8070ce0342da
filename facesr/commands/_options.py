"""Every CLI option facesr has, declared once as a ``typing.Annotated`` alias (huggingface_hub's CLI does the same).

One name per concept in every command: ``--store`` for the store (also a positional where a command is about one
store), ``-o/--out`` for what a command writes, ``--device`` (default ``auto``), ``--json`` (then stdout holds
nothing but JSON), ``-q/--quiet``, ``--workers``, ``--scheduler``, ``--weights-dir``; ``--debug`` is a root
option (``facesr --debug ...``) and is accepted by the commands it changes (build, prepare).

Checks that are about the command line (a count that must be positive, a device name, an LR spec) live here, as
typer ranges or callbacks, so a bad value is a usage error (exit 2) before any library code runs. Checks that
need data (does the split exist, is the file an image) stay in the library and come back as one
:class:`~facesr.errors.FacesrError` line (exit 1).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

# ------------------------------------------------------------------------------------------ root state


@dataclass
class State:
    """Process-wide CLI settings, made once by the entry point (``facesr.cli.main``) and shared via ``ctx.obj``."""

    debug: bool = False


def state(ctx: typer.Context) -> State:
    """The root :class:`State` (created when a test invokes the app without one)."""
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


def _debug_callback(ctx: typer.Context, value: bool) -> bool:
    if value:
        state(ctx).debug = True
    return value


# ------------------------------------------------------------------------------------------ validators

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _device_callback(value: Optional[str]) -> Optional[str]:
    if value is not None and not _DEVICE.match(value):
        raise typer.BadParameter(f"{value!r} is not a device; use auto, cpu, cuda, cuda:N or mps")
    return value


def _lr_callback(value: Optional[str]) -> Optional[str]:
    """``METHOD:SIZE[,METHOD:SIZE...]``: known methods, sides from 1 up to below the 128 px HR side.

    Checked here so that ``--lr bicubic-pil:100000`` never reaches an allocation.
    """
    if value is None:
        return None
    from facesr.data.degrade import expand_lr
    from facesr.data.store import HR_SIZE
    from facesr.errors import ConfigError

    for part in (p for p in value.split(",") if p.strip()):
        try:
            specs = expand_lr(part)  # mr3 / mr7 / mr8: UFVNet's named sets of sizes
        except ConfigError as exc:
            raise typer.BadParameter(str(exc) + (f" ({exc.hint})" if exc.hint else "")) from None
        for spec in specs:
            if spec.size >= HR_SIZE:
                raise typer.BadParameter(f"LR side {spec.size} of {part.strip()!r} is not below the HR side {HR_SIZE}")
    return value


def _positive_float(value: Optional[float]) -> Optional[float]:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"must be a positive number, got {value}")
    return value


def _preset_callback(value: Optional[str]) -> Optional[str]:
    """A preset is a registered name or a YAML file; a path-like value that is not a file is "file not found"."""
    if value is not None and ("/" in value or value.endswith((".yaml", ".yml"))) and not Path(value).is_file():
        raise typer.BadParameter(f"file not found: {value}")
    return value


def resolve_store(positional: Optional[str], option: Optional[str]) -> str:
    """The store named either positionally or with ``--store`` (``data info STORE`` = ``data info --store STORE``)."""
    if positional and option and positional != option:
        raise typer.BadParameter(f"two stores given: {positional!r} and --store {option!r}", param_hint="STORE")
    store = positional or option
    if not store:
        raise typer.BadParameter("give the store, as STORE or --store STORE", param_hint="STORE")
    return store


# ------------------------------------------------------------------------------------------ the aliases
# Stores are strings, not Paths: a URL such as s3://bucket/x.zarr must survive (Path folds its "//").

Store = Annotated[Optional[str], typer.Option("--store", help="The store: a path or URL (e.g. stores/celeba.zarr).",
                                              show_default=False)]
StoreArg = Annotated[Optional[str], typer.Argument(metavar="STORE", help="The store (same as --store).",
                                                  show_default=False)]
OutDir = Annotated[Path, typer.Option("-o", "--out", help="Folder to write.")]
OutPng = Annotated[Path, typer.Option("-o", "--out", help="PNG to write.")]
OutFile = Annotated[Optional[Path], typer.Option("-o", "--out", help="File to write.", show_default=False)]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON (nothing else on stdout).")]
Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="No progress bars, notes or next steps.")]
Debug = Annotated[bool, typer.Option("--debug", callback=_debug_callback, is_eager=True,
                                     help="Synchronous scheduler and full tracebacks (also FACESR_DEBUG=1).")]
Device = Annotated[str, typer.Option("--device", callback=_device_callback,
                                     help="auto | cpu | cuda | cuda:N | mps.")]
WeightsDir = Annotated[Optional[Path], typer.Option(
    "--weights-dir", file_okay=False,
    help="Weights folder (default: $FACESR_WEIGHTS, else ~/.cache/facesr/weights).", show_default=False)]
Workers = Annotated[Optional[int], typer.Option("--workers", min=1, max=4096,
                                                help="Local workers (default: all cores).", show_default=False)]
Scheduler = Annotated[Optional[str], typer.Option(
    "--scheduler", help="sync | threads | processes | tcp://host:port (a dask.distributed cluster).",
    show_default=False)]
Chunk = Annotated[Optional[int], typer.Option("--chunk", min=1, help="Rows per chunk when creating a store (256).",
                                              show_default=False)]
Limit = Annotated[Optional[int], typer.Option("--limit", min=1, help="Use only the first N records.",
                                              show_default=False)]
Dataset = Annotated[Optional[str], typer.Option(
    "--dataset", help="Source: celeba, celeba-wild, helen, ffhq, folder, pairs.", show_default=False)]
Root = Annotated[Optional[Path], typer.Option("--root", help="Dataset folder.", show_default=False)]
Crop = Annotated[Optional[str], typer.Option(
    "--crop", help="aligned (aligned CelebA) | landmarks (wild photos) | resize (default: as recorded, else aligned).",
    show_default=False)]
LR = Annotated[Optional[str], typer.Option("--lr", callback=_lr_callback,
                                           help="LR sets, e.g. bicubic-pil:16,bilinear-progressive:16.",
                                           show_default=False)]
SplitFile = Annotated[Optional[Path], typer.Option(
    "--split-file", dir_okay=False, help="folder source: lines '<name> <split>'.", show_default=False)]
MaxPixels = Annotated[Optional[int], typer.Option(
    "--max-pixels", min=1, help="Refuse images with more pixels, read from the header (default 50,000,000).",
    show_default=False)]
MinSide = Annotated[Optional[int], typer.Option("--min-side", min=1,
                                                help="Refuse images with a side under this, in px (default 32).",
                                                show_default=False)]
Strict = Annotated[bool, typer.Option("--strict", help="Verify fails on any failed sample or warning too.")]
MinUsable = Annotated[Optional[float], typer.Option(
    "--min-usable", min=0.0, max=1.0, help="Verify fails when fewer samples than this fraction are usable (0.9).",
    show_default=False)]
ClusterTimeout = Annotated[Optional[float], typer.Option(
    "--timeout", callback=_positive_float, help="Seconds to wait for a dask cluster's first worker (default: wait).",
    show_default=False)]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an existing store (a facesr store only).")]
Split = Annotated[Optional[str], typer.Option("--split", help="train | val | test (default: all).",
                                              show_default=False)]
Samples = Annotated[int, typer.Option("-n", min=1, help="How many samples.")]
Seed = Annotated[int, typer.Option("--seed", min=0, help="Which samples are picked (a non-negative integer).")]
Checkpoint = Annotated[Optional[Path], typer.Option("--checkpoint", help="Run folder (or a checkpoint folder).",
                                                    show_default=False)]
Which = Annotated[str, typer.Option("--which", help="best (falls back to last) | last.")]
Preset = Annotated[Optional[str], typer.Option("--preset", callback=_preset_callback, show_default=False,
                                               help="Preset name (see --list-presets) or a YAML file.")]
Sets = Annotated[list[str], typer.Option(
    "--set", help="Override a config key, KEY=VALUE (YAML value), repeatable: --set optim.lr=2e-4 --set epochs=3.")]
Epochs = Annotated[Optional[int], typer.Option("--epochs", min=1, help="Same as --set epochs=N.",
                                               show_default=False)]
MaxSteps = Annotated[Optional[int], typer.Option("--max-steps", min=1,
                                                 help="Stop (and save) after N optimizer steps in total.",
                                                 show_default=False)]
MaxMinutes = Annotated[Optional[float], typer.Option("--max-minutes", callback=_positive_float,
                                                     help="Stop (and save) after this many minutes.",
                                                     show_default=False)]
Protocols = Annotated[list[str], typer.Option(
    "--protocol", "-p", help="Evaluation protocol; repeat for several (dic, basicsr, sparnet, sfmnet, rgb).")]
Extras = Annotated[list[str], typer.Option(
    "--extra", "-e",
    help="Extra metric; repeat (msssim, msssim-seed000, lpips, lpips-vgg, aed, identity, regions: PSNR of "
         "eyes/nose/mouth).")]
SelfEnsemble = Annotated[bool, typer.Option(
    "--self-ensemble", help="Average the model's outputs over the 8 flip/rot90 transforms, inverted (GVTNet+).")]
Faces = Annotated[int, typer.Option("-n", "--faces", min=8, max=5000, help="How many face variants to make.")]

__all__ = [
    "Checkpoint", "Chunk", "ClusterTimeout", "Crop", "Dataset", "Debug", "Device", "Epochs", "Extras", "Faces",
    "Json", "LR", "Limit", "MaxMinutes", "MaxPixels", "MaxSteps", "MinSide", "MinUsable", "OutDir", "OutFile",
    "OutPng", "Overwrite", "Preset", "Protocols", "Quiet", "Root", "Samples", "Scheduler", "Seed", "SelfEnsemble",
    "Sets", "Split", "SplitFile", "State", "Store", "StoreArg", "Strict", "WeightsDir", "Which", "Workers",
    "resolve_store", "state",
]
