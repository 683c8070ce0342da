"""facesr.data.images: decoding rules, truncation detection, atomic PNG writes."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from facesr.data.images import decode_image, read_image, write_png
from facesr.errors import DatasetError


def _rgb(h=37, w=53, seed=0):
    rng = np.random.default_rng(seed)
    # smooth enough to make a realistic JPEG, random enough to catch channel swaps
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    img[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    return img


def _encode(img, fmt, **kw):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_png_roundtrip_is_lossless_and_rgb(tmp_path):
    img = _rgb()
    p = write_png(tmp_path / "a" / "b" / "x.png", img)
    assert p.exists()
    back = read_image(p)
    assert back.dtype == np.uint8 and back.shape == img.shape
    np.testing.assert_array_equal(back, img)
    # the file really is RGB (not BGR) when read by another decoder
    np.testing.assert_array_equal(np.asarray(Image.open(p).convert("RGB")), img)


def test_write_png_is_atomic_and_leaves_no_temp(tmp_path):
    p = tmp_path / "x.png"
    write_png(p, _rgb(seed=1))
    write_png(p, _rgb(seed=2))  # overwrite in place
    np.testing.assert_array_equal(read_image(p), _rgb(seed=2))
    assert sorted(f.name for f in tmp_path.iterdir()) == ["x.png"]
    with pytest.raises(ValueError):
        write_png(tmp_path / "bad.png", np.zeros((4, 4, 3), np.float32))
    assert sorted(f.name for f in tmp_path.iterdir()) == ["x.png"]


def test_grey_rgba_palette_and_16bit_become_rgb(tmp_path):
    grey = np.arange(20 * 30, dtype=np.uint32).reshape(20, 30).astype(np.uint8)
    (tmp_path / "g.png").write_bytes(_encode(grey, "PNG"))
    out = read_image(tmp_path / "g.png")
    assert out.shape == (20, 30, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)

    rgba = np.dstack([_rgb(20, 30), np.full((20, 30), 7, np.uint8)])
    (tmp_path / "a.png").write_bytes(_encode(rgba, "PNG"))
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), rgba[..., :3])

    pal = Image.fromarray(_rgb(20, 30)).convert("P")
    buf = io.BytesIO()
    pal.save(buf, format="PNG")
    (tmp_path / "p.png").write_bytes(buf.getvalue())
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), np.asarray(pal.convert("RGB")))

    deep = (np.arange(20 * 30 * 3).reshape(20, 30, 3) * 100 % 65536).astype(np.uint16)
    ok, enc = cv2.imencode(".png", deep)
    (tmp_path / "d.png").write_bytes(enc.tobytes())
    out = read_image(tmp_path / "d.png")
    assert out.dtype == np.uint8 and out.shape == (20, 30, 3)

    (tmp_path / "grey.jpg").write_bytes(_encode(grey, "JPEG", quality=95))
    assert read_image(tmp_path / "grey.jpg").shape == (20, 30, 3)


def test_jpeg_decodes_like_pillow(tmp_path):
    data = _encode(_rgb(64, 48), "JPEG", quality=90)
    (tmp_path / "x.jpg").write_bytes(data)
    want = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    np.testing.assert_array_equal(read_image(tmp_path / "x.jpg"), want)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.98])
def test_truncated_jpeg_is_detected(tmp_path, keep):
    data = _encode(_rgb(96, 96), "JPEG", quality=95)
    p = tmp_path / "t.jpg"
    p.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DatasetError, match="cannot decode"):
        read_image(p)


def test_jpeg_with_trailing_padding_is_fine(tmp_path):
    data = _encode(_rgb(32, 32), "JPEG", quality=95)
    p = tmp_path / "pad.jpg"
    p.write_bytes(data + b"\x00" * 100)
    assert read_image(p).shape == (32, 32, 3)


def test_truncated_png_is_detected(tmp_path):
    data = _encode(_rgb(64, 64), "PNG")
    for n, cut in enumerate([len(data) // 2, len(data) - 12, len(data) - 3]):
        p = tmp_path / f"t{n}.png"
        p.write_bytes(data[:cut])
        with pytest.raises(DatasetError):
            read_image(p)


def test_empty_missing_and_garbage_files(tmp_path):
    (tmp_path / "e.jpg").write_bytes(b"")
    with pytest.raises(DatasetError, match="empty"):
        read_image(tmp_path / "e.jpg")
    with pytest.raises(DatasetError, match="does not exist"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "g.jpg").write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(DatasetError, match="cannot decode"):
        read_image(tmp_path / "g.jpg")
    with pytest.raises(DatasetError):
        read_image(tmp_path)  # a folder
    with pytest.raises(DatasetError):
        decode_image(b"\xff\xd8\xff" + b"\x00" * 50, "head-only.jpg")


@pytest.mark.shared
def test_real_photos_decode_like_pillow(helen_root, celeba_root):
    files = sorted(helen_root.glob("*.jpg"))[:10] + sorted((celeba_root / "img_align_celeba").glob("*.jpg"))[:10]
    for f in files:
        a = read_image(f)
        np.testing.assert_array_equal(a, np.asarray(Image.open(f).convert("RGB")))


# ------------------------------------------------------------------------------ hostile and tiny images


def _bomb_png(path, side=30000):
    """A valid 1-bit PNG declaring side×side pixels (900 MP: 2.7 GB as RGB) in about 100 KB."""
    import struct
    import zlib

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row * 1000) for _ in range(side // 1000)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def test_pixel_bomb_is_refused_from_its_header_with_bounded_memory(tmp_path):
    """A 30000×30000 PNG (small file) is refused before decoding; a subprocess doing it stays small."""
    import subprocess
    import sys

    bomb = _bomb_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 3_000_000
    from facesr.data.images import PixelLimitError, header_size

    with pytest.raises(PixelLimitError, match=r"900000000 pixels.*over the pixel limit"):  # Pillow's own limit
        read_image(bomb)
    big = _bomb_png(tmp_path / "big.png", side=8000)  # 64 MP: under Pillow's limit, over ours
    assert header_size(big.read_bytes()) == (8000, 8000)
    with pytest.raises(PixelLimitError, match=r"8000x8000 \(64.0 MP\), over the 50 MP pixel limit"):
        read_image(big)
    code = ("import resource, sys\nfrom facesr.data.images import read_image\n"
            "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\nbefore = peak()\n"
            "try:\n    read_image(sys.argv[1])\nexcept Exception as e:\n    print(type(e).__name__)\n"
            "print(peak() - before)\n")
    res = subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True, text=True, timeout=120)
    err, grew_kb = res.stdout.split()
    assert err == "PixelLimitError" and int(grew_kb) < 100_000, res.stdout  # decoding would need 2.7 GB


def test_size_limits_are_options(tmp_path):
    p = tmp_path / "ok.png"
    write_png(p, _rgb(64, 48))
    assert read_image(p, max_pixels=64 * 48).shape == (64, 48, 3)
    with pytest.raises(DatasetError, match="over the"):
        read_image(p, max_pixels=64 * 48 - 1)
    with pytest.raises(DatasetError, match="under the 49 px minimum side"):
        read_image(p, min_side=49)
    assert read_image(p, min_side=48).shape == (64, 48, 3)


@pytest.mark.parametrize("h, w", [(1, 1), (1, 4000), (4000, 1), (31, 200)])
def test_images_too_small_for_a_face_are_refused(tmp_path, h, w):
    p = tmp_path / f"s_{h}x{w}.png"
    write_png(p, np.zeros((h, w, 3), np.uint8))
    with pytest.raises(DatasetError, match=f"{w}x{h}, under the 32 px minimum side"):
        read_image(p, min_side=32)
    assert read_image(p).shape == (h, w, 3)  # no minimum unless asked (LR files are 16×16)
