"""Image file I/O at the edge: decode to uint8 RGB H×W×3, write lossless PNG atomically.

Decoding is OpenCV's (``cv2.imdecode``), which on this stack decodes CelebA and Helen JPEGs bit-for-bit
like Pillow (checked on 262 files), so crops match PIL-based reference code. EXIF orientation is
ignored, like ``PIL.Image.open`` and like the datasets' landmark annotations (raw pixel coordinates).
Grey and palette images become 3-channel RGB; an alpha channel is dropped (not composited); 16-bit
images are reduced to 8 bit.

Hostile and tiny files: the header is read first (Pillow's ``Image.open`` is lazy: it parses the header
and gives the size without decoding; OpenCV has no header-only API), so an image declaring more than
``max_pixels`` (default :data:`DEFAULT_MAX_PIXELS`, 50 MP) is refused before a byte of it is decoded -- a
2.6 MB PNG can declare 30000×30000, 2.7 GB once decoded -- and one with a side under ``min_side`` (the
crop stage uses 32: too small to hold a face) is refused too. Memory per decode is then bounded by
``3 · max_pixels`` bytes.

Truncated files: libjpeg decodes a truncated JPEG to a partly grey image with only a warning, so a
decoded array is not proof of a good file. A JPEG must end with its EOI marker and a PNG with its IEND
chunk (trailing padding allowed); a file that does not is fully loaded by Pillow, whose truncation
check then decides (``OSError: image file is truncated``). Every failure is a :class:`DatasetError`
with the reason.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from facesr.errors import DatasetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

_READ_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
#: images declaring more pixels are refused from their header
DEFAULT_MAX_PIXELS = 50_000_000


class PixelLimitError(DatasetError):
    """An image declares more pixels than allowed (found from its header, nothing decoded)."""


def header_size(data: bytes, name: str | os.PathLike = "<bytes>") -> tuple[int, int]:
    """``(width, height)`` from the image header alone (Pillow's lazy ``Image.open``; nothing is decoded)."""
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return int(im.size[0]), int(im.size[1])
    except Image.DecompressionBombError as e:  # Pillow refuses over 2 × its MAX_IMAGE_PIXELS, before the size
        raise PixelLimitError(f"{name} declares too many pixels ({e}), over the pixel limit",
                              hint="refused before decoding") from None
    except UnidentifiedImageError:
        raise DatasetError(f"cannot decode {name}: not an image (no header Pillow recognises)",
                           hint="check the file format") from None
    except Exception as e:  # noqa: BLE001 - PIL raises several types
        raise DatasetError(f"cannot decode {name}: bad image header ({e})",
                           hint="the file is truncated or corrupt; re-download it") from None


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image file from its header (Pillow reads only what the header needs)."""
    from PIL import Image

    p = Path(path)
    try:
        with Image.open(p) as im:
            return int(im.size[0]), int(im.size[1])
    except Exception as e:  # noqa: BLE001 - missing file, not an image, bomb
        raise DatasetError(f"cannot read the image header of {p}: {e}") from None


def check_size(size: tuple[int, int], name, *, max_pixels: int | None, min_side: int | None) -> None:
    """DatasetError when a ``(width, height)`` exceeds ``max_pixels`` or has a side under ``min_side``."""
    w, h = size
    if max_pixels is not None and w * h > max_pixels:
        raise PixelLimitError(f"{name} is {w}x{h} ({w * h / 1e6:.1f} MP), over the {max_pixels / 1e6:g} MP pixel limit",
                           hint="refused before decoding; raise --max-pixels to accept it")
    if min_side is not None and min(w, h) < min_side:
        raise DatasetError(f"{name} is {w}x{h}, under the {min_side} px minimum side (too small for a face)",
                           hint="lower --min-side to accept it")


def _looks_complete(data: bytes) -> bool:
    """Cheap end-of-stream check for JPEG and PNG; other formats pass."""
    tail = data[-4096:].rstrip(b"\x00\r\n\t ")
    if data[:3] == b"\xff\xd8\xff":  # JPEG: EOI marker at the end (some writers pad after it)
        return tail.endswith(b"\xff\xd9") or b"\xff\xd9" in tail[-64:]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" in tail[-16:]
    return True


def _pil_check(path: Path, data: bytes) -> None:
    """Full decode with Pillow's strict truncation check; raises DatasetError on failure."""
    import io

    from PIL import Image, ImageFile

    try:
        with Image.open(io.BytesIO(data)) as im:
            old = ImageFile.LOAD_TRUNCATED_IMAGES  # strict even if someone relaxed it process-wide
            ImageFile.LOAD_TRUNCATED_IMAGES = False
            try:
                im.load()
            finally:
                ImageFile.LOAD_TRUNCATED_IMAGES = old
    except Exception as e:  # noqa: BLE001 - PIL raises several types
        raise DatasetError(f"cannot decode {path}: {e}", hint="the file is truncated or corrupt; re-download it") from e


def decode_image(data: bytes, name: str | os.PathLike = "<bytes>", *, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 min_side: int | None = None) -> np.ndarray:
    """Decode encoded image bytes to uint8 RGB H×W×3 (see module docstring for the rules); the header's size
    is checked against ``max_pixels`` and ``min_side`` first (None: no limit)."""
    path = Path(name)
    if len(data) == 0:
        raise DatasetError(f"{path} is empty (0 bytes)", hint="re-download or remove the file")
    if max_pixels is not None or min_side is not None:
        check_size(header_size(data, path), path, max_pixels=max_pixels, min_side=min_side)
    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, _READ_FLAGS)
    if img is None:
        _pil_check(path, data)  # a more precise reason where Pillow has one
        raise DatasetError(f"cannot decode {path}: not an image OpenCV can read", hint="check the file format")
    if not _looks_complete(data):
        _pil_check(path, data)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    else:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if img.dtype != np.uint8:  # pragma: no cover - IMREAD_COLOR already gives 8 bit
        img = (img / 257.0).round().astype(np.uint8) if img.dtype == np.uint16 else img.astype(np.uint8)
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise DatasetError(f"{path} decodes to an empty image {img.shape}")
    return np.ascontiguousarray(img)


def read_image(path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS,
               min_side: int | None = None) -> np.ndarray:
    """uint8 RGB H×W×3 from an image file; DatasetError (with the reason) if missing, empty, unreadable,
    truncated, over ``max_pixels`` or with a side under ``min_side`` (both checked from the header)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError as e:
        raise DatasetError(f"image {p} does not exist") from e
    except OSError as e:
        raise DatasetError(f"cannot read {p}: {e}") from e
    return decode_image(data, p, max_pixels=max_pixels, min_side=min_side)


def encode_png(img: np.ndarray, compression: int = 1) -> bytes:
    """Lossless PNG bytes of a uint8 RGB H×W×3 (or H×W grey) array."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3)):
        raise ValueError(f"expected uint8 H×W×3 RGB or H×W grey, got {arr.dtype} {arr.shape}")
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", arr, [cv2.IMWRITE_PNG_COMPRESSION, int(compression)])
    if not ok:  # pragma: no cover
        raise DatasetError("PNG encoding failed")
    return buf.tobytes()


def write_png(path: str | os.PathLike, img: np.ndarray, compression: int = 1) -> Path:
    """Write ``img`` (uint8 RGB) as PNG atomically: a temp file in the same folder, then ``os.replace``.
    Creates the parent folder. Returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = encode_png(img, compression)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return p


__all__ = ["DEFAULT_MAX_PIXELS", "IMAGE_EXTENSIONS", "PixelLimitError", "check_size", "decode_image", "encode_png",
           "header_size", "image_size", "read_image", "write_png"]
