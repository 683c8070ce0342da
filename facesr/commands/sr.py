"""`facesr sr`: super-resolve real photos and tiny face crops with a trained run.

    facesr sr photo.jpg tiny16.png faces/ -o out/ --checkpoint runs/s000

Each input (files, or folders of images) gives ``OUT/<stem>_sr.png``. A photo gets its largest face
detected (dlib), aligned to the 128 crop, degraded with the run's LR spec, super-resolved and pasted
back (feathered) into the photo upscaled so the face keeps its SR resolution; ``<stem>_face.png`` (the
128×128 SR face) and ``<stem>_lr.png`` (what the model saw) are written beside it. An image ≤ 32 px is
taken as an LR face directly and its 128×128 SR face is written. A photo without a detectable face is
reported and skipped (exit code 1 at the end if any failed).
"""

from __future__ import annotations

from pathlib import Path

import typer


def _inputs(paths: list[Path]) -> list[Path]:
    from facesr.data.images import IMAGE_EXTENSIONS
    from facesr.errors import DatasetError

    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_EXTENSIONS)
        elif p.is_file():
            out.append(p)
        else:
            raise DatasetError(f"no such file or folder: {p}")
    return out


def sr(
    inputs: list[Path] = typer.Argument(..., help="Images or folders of images (photos, or LR faces ≤ 32 px)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder."),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Run folder (or a checkpoint folder)."),
    which: str = typer.Option("best", "--which", help="best (falls back to last) | last."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    scale: str = typer.Option("auto", "--scale", help="Photo upscale before pasting: auto or an integer 1-8."),
) -> None:
    """Super-resolve faces in photos (detect → align → SR → paste back) or tiny LR crops."""
    from rich.console import Console

    from facesr.data.images import read_image, write_png
    from facesr.errors import ConfigError, FacesrError
    from facesr.train.inference import TINY_MAX, load_run

    console = Console(stderr=True, highlight=False)
    if scale != "auto" and not (scale.isdigit() and 1 <= int(scale) <= 8):
        raise ConfigError(f"--scale must be auto or 1-8, got {scale!r}")
    files = _inputs(inputs)
    pred = load_run(checkpoint, which, device)
    console.print(f"{pred!r}")
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for f in files:
        try:
            img = read_image(f)
            if max(img.shape[:2]) <= TINY_MAX:
                face = pred.tiny(img)
                write_png(out / f"{f.stem}_sr.png", face)
                console.print(f"{f.name}: LR face {img.shape[1]}×{img.shape[0]} → {out / (f.stem + '_sr.png')}")
                continue
            res = pred.photo(img, scale="auto" if scale == "auto" else int(scale))  # the Predictor keeps dlib loaded
            write_png(out / f"{f.stem}_sr.png", res.image)
            write_png(out / f"{f.stem}_face.png", res.face_sr)
            write_png(out / f"{f.stem}_lr.png", res.face_lr)
            console.print(f"{f.name}: photo {img.shape[1]}×{img.shape[0]}, face → ×{res.scale} "
                          f"{res.image.shape[1]}×{res.image.shape[0]} → {out / (f.stem + '_sr.png')}")
            if res.face_px > 2 * pred.lr_size:  # the model only ever sees lr_size pixels of face
                console.print(f"  [yellow]note:[/] the face spans ~{res.face_px:.0f} px here but the model sees it at "
                              f"{pred.lr_size} px, so the result has less detail than the photo; this model is "
                              f"for faces of about {pred.lr_size}–{2 * pred.lr_size} px")
        except FacesrError as exc:
            failed += 1
            console.print(f"[red]{f.name}: {exc}[/]" + (f" ({exc.hint})" if exc.hint else ""))
    if failed:
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    root.command("sr")(sr)
