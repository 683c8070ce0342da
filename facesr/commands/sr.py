"""`facesr sr`: super-resolve real photos and tiny face crops with a trained run.

    facesr sr photo.jpg tiny16.png faces/ -o out/ --checkpoint runs/s000

Each input (files, or folders of images) gives ``OUT/<stem>_sr.png``. In a photo every face is found
(``--detector``: dlib HOG, then dlib's CNN for the faces HOG misses; ``--min-face``, ``--max-faces``), aligned
to the model's training template, degraded with the run's LR spec, super-resolved and pasted back (feathered)
into the photo upscaled so the faces keep their SR resolution (:mod:`facesr.train.photo`);
``<stem>_face<k>.png`` (the 128×128 SR face, k = 0 for the largest) and ``<stem>_face<k>_lr.png`` (what the
model saw) are written beside it. An image ≤ 32 px is taken as an LR face directly and its 128×128 SR face
is written. A photo without a detectable face is reported and skipped (exit code 1 at the end if any
failed). ``--json``: one JSON list, an object per input with its ``faces`` (box, landmarks, scale, files).
"""

from __future__ import annotations

from pathlib import Path

import typer

from facesr.commands import _options as O
from facesr.commands import _render as R


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
    out: O.OutDir = ...,
    checkpoint: O.Checkpoint = ...,
    which: O.Which = "best",
    device: O.Device = "auto",
    scale: str = typer.Option("auto", "--scale", help="Photo upscale before pasting: auto or an integer 1-8."),
    detector: str = typer.Option("hog+cnn", "--detector", help="Face finder: hog | cnn | hog+cnn (HOG, then the CNN)."),
    min_face: float = typer.Option(0.0, "--min-face", min=0.0, help="Ignore faces smaller than this (px)."),
    max_faces: int = typer.Option(0, "--max-faces", min=0,
                                  help="At most this many faces per photo, largest first (0: all)."),
    self_ensemble: O.SelfEnsemble = False,
    json_out: O.Json = False,
    quiet: O.Quiet = False,
) -> None:
    """Super-resolve every face in photos (detect → align → SR → paste back) or tiny LR crops."""
    from rich.console import Console

    from facesr.data.images import read_image
    from facesr.errors import ConfigError, FacesrError
    from facesr.train.inference import TINY_MAX, load_run
    from facesr.train.photo import PhotoSR

    console = Console(stderr=True, highlight=False, quiet=quiet or json_out)  # notes; failures always show
    if scale != "auto" and not (scale.isdigit() and 1 <= int(scale) <= 8):
        raise ConfigError(f"--scale must be auto or 1-8, got {scale!r}")
    files = _inputs(inputs)
    pred = load_run(checkpoint, which, device, self_ensemble=self_ensemble)
    console.print(f"{pred!r}")
    photo_sr = PhotoSR(pred, detector=detector, min_face=min_face, max_faces=max_faces)
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    results: list[dict] = []
    with _progress(quiet or json_out) as bar:
        task = bar.add_task("sr", total=len(files))
        for f in files:
            try:
                img = read_image(f)
                if max(img.shape[:2]) <= TINY_MAX:
                    results.append(_tiny(pred, img, f, out))
                    console.print(f"{f.name}: LR face {img.shape[1]}×{img.shape[0]} → {results[-1]['sr']}")
                else:
                    res = photo_sr(img, scale="auto" if scale == "auto" else int(scale))
                    results.append(_photo(res, img, f, out))
                    _notes(console, f, img, res, pred.lr_size)
            except FacesrError as exc:
                failed += 1
                results.append({"input": str(f), "error": str(exc), "hint": exc.hint})
                R.err_console().print(f"[red]{f.name}: {exc}[/]" + (f" ({exc.hint})" if exc.hint else ""))
            bar.advance(task)
    if json_out:
        R.emit_json(results)
    if failed:
        raise typer.Exit(1)


def _progress(disable: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=R.err_console(), disable=disable, transient=True)


def _tiny(pred, img, f: Path, out: Path) -> dict:
    from facesr.data.images import write_png

    path = out / f"{f.stem}_sr.png"
    write_png(path, pred.tiny(img))
    return {"input": str(f), "kind": "lr_face", "size": [img.shape[1], img.shape[0]], "sr": str(path)}


def _photo(res, img, f: Path, out: Path) -> dict:
    """Write the pasted photo and each face's SR and LR crop; the JSON record of the input."""
    import numpy as np

    from facesr.data.images import write_png

    path = out / f"{f.stem}_sr.png"
    write_png(path, res.image)
    faces = []
    for k, face in enumerate(res.faces):
        sr_path, lr_path = out / f"{f.stem}_face{k}.png", out / f"{f.stem}_face{k}_lr.png"
        write_png(sr_path, face.sr)
        write_png(lr_path, face.lr)
        faces.append({"box": [round(v, 1) for v in face.box], "detector": face.source,
                      "landmarks": np.round(face.landmarks, 2).tolist(), "scale": res.scale,
                      "face_px": round(face.face_px, 1), "sr": str(sr_path), "lr": str(lr_path)})
    return {"input": str(f), "kind": "photo", "size": [img.shape[1], img.shape[0]], "scale": res.scale,
            "sr": str(path), "faces": faces}


def _notes(console, f: Path, img, res, lr_size: int) -> None:
    console.print(f"{f.name}: photo {img.shape[1]}×{img.shape[0]}, {len(res.faces)} face(s) → ×{res.scale} "
                  f"{res.image.shape[1]}×{res.image.shape[0]}")
    big = max(face.face_px for face in res.faces)
    if big > 2 * lr_size:  # the model only ever sees lr_size pixels of face
        console.print(f"  [yellow]note:[/] a face spans ~{big:.0f} px here but the model sees it at {lr_size} px, "
                      f"so the result has less detail than the photo; this model is for faces of about "
                      f"{lr_size}–{2 * lr_size} px")


def register(root: typer.Typer) -> None:
    root.command("sr")(sr)
