"""The store schema: every array a facesr store holds, as one typed spec each.

This is the only module in ``facesr/`` that spells an array's name. Everyone else imports the specs
(``schema.HR.name``, ``schema.lr(spec).name``, ``schema.HEATMAP``) and asks :class:`facesr.data.store.FaceStore`
for arrays through them.

Every array is chunked along ``sample`` by the store's ``chunk`` rows (a chunk is the unit of work and of
streaming) and is whole along its other dimensions. Coordinates are HR pixels ``(x, y)``, origin top-left.

=========================  ==================================  =========  =========  ========================
name                       dimensions                          dtype      range      meaning
=========================  ==================================  =========  =========  ========================
``ids``                    sample                              str                   dataset's own id, unique
``split``                  sample                              str                   train / val / test
``failure``                sample                              str                   "" when usable, else why
``hr``                     sample, y, x, channel               uint8      0–255      RGB HR crop
``lr/<spec>``              sample, y_<spec>, x_<spec>, channel uint8      0–255      LR by ``data.degrade``
``landmarks``              sample, point, xy                   float32    HR px      68 points, NaN if none
``priors/boxes``           sample, box, field                  float32    HR px      x0 y0 x1 y1 score class;
                                                                                     NaN rows pad
``priors/heatmap``         sample, y, x                        float16    0–1        part heatmap
``priors/parsing``         sample, y, x                        uint8      classes    face-parsing class map
``priors/lr_parsing/<s>``  sample, part, y_<s>, x_<s>          float32    0–1        HR binary maps bicubic-
                                                                                     downsampled to LR ``s``
=========================  ==================================  =========  =========  ========================

LR dimensions carry the LR spec's name (``y_bicubic-pil_16``) because xarray needs one size per dimension
name across a dataset, and two LR sets of one size may still differ in method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

__all__ = [
    "ArraySpec", "BOXES", "FAILURE", "FIXED", "HEATMAP", "HR", "IDS", "LANDMARKS", "LR_GROUP", "LR_PARSING_GROUP",
    "CODECS", "PARSING", "PRIORS_GROUP", "SPLIT", "codec_chain", "codec_repr", "codec_short", "lr", "lr_parsing", "spec_for",
]

#: codec key → zarr bytes-to-bytes codecs, in encoding order. Chosen by ``bench/codecs.py`` on real CelebA
#: arrays (``bench/results/codecs_store.json``): photos barely compress (1.1–1.2×), so images use Blosc-LZ4
#: with byte shuffle, which reads fastest; float arrays the same (it beats Zstd on both ratio and speed
#: there); class maps Zstd-3 (46×). Every chain ends with CRC32C: encoding appends a checksum to each chunk,
#: decoding checks it *first*, so a flipped byte is a clean error before any decompressor sees it (without
#: it, Blosc either fails or silently returns wrong pixels).
CODECS: dict[str, tuple] = {
    "image": (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),),
    "float": (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),),
    "dense": (ZstdCodec(level=3),),
    "none": (),
}


def codec_chain(codec: str, checksum: bool = True) -> tuple:
    """The zarr ``compressors`` of a codec key, with the CRC32C checksum last (unless ``checksum=False``)."""
    return (*CODECS[codec], Crc32cCodec()) if checksum else CODECS[codec]


def codec_repr(chain: tuple) -> str:
    """``BloscCodec(cname=lz4, clevel=5, shuffle=shuffle),Crc32cCodec()`` (the store's ``codecs`` attribute)."""
    def args(c) -> str:
        d = c.to_dict().get("configuration", {})
        return ", ".join(f"{k}={v}" for k, v in d.items() if k in ("cname", "clevel", "shuffle", "level"))

    return ",".join(f"{type(c).__name__}({args(c)})" for c in chain) or "none"


def codec_short(chain: tuple) -> str:
    """``blosc-lz4+shuf,crc32c``, ``zstd-3,crc32c``, ``crc32c`` (``facesr data info``)."""
    parts = []
    for c in chain:
        d = c.to_dict()
        cfg, kind = d.get("configuration", {}), str(d.get("name", type(c).__name__)).lower()
        if kind == "blosc":
            tag = {"noshuffle": "", "shuffle": "+shuf", "bitshuffle": "+bitshuf"}.get(str(cfg.get("shuffle")), "")
            parts.append(f"blosc-{cfg.get('cname')}{tag}")
        elif kind == "zstd":
            parts.append(f"zstd-{cfg.get('level')}")
        else:
            parts.append(kind)
    return ",".join(parts) or "none"


LR_GROUP = "lr"
PRIORS_GROUP = "priors"
LR_PARSING_GROUP = f"{PRIORS_GROUP}/lr_parsing"


@dataclass(frozen=True)
class ArraySpec:
    """One array of the store.

    ``tail`` is the shape after ``sample``: ints are fixed, strings name a size the store decides
    (``"hr"``: the HR side, ``"boxes"``: boxes kept per face, ``"parts"``: binary maps per face, or an LR
    side such as ``"lr:16"``); :meth:`shape` resolves them. ``codec`` is a key of :data:`CODECS`
    (:attr:`compressors` gives its chain, checksum included).
    """

    name: str
    dims: tuple[str, ...]
    dtype: str
    tail: tuple[int | str, ...] = ()
    value_range: tuple[float, float] | None = None
    codec: str = "dense"
    description: str = ""

    @property
    def ndim(self) -> int:
        return len(self.dims)

    @property
    def is_prior(self) -> bool:
        return self.name.startswith(PRIORS_GROUP + "/") or self.name == LANDMARKS.name

    @property
    def compressors(self) -> tuple:
        return codec_chain(self.codec)

    @property
    def np_dtype(self) -> Any:
        return str if self.dtype == "str" else np.dtype(self.dtype)

    def shape(self, n: int, **sizes: int) -> tuple[int, ...]:
        """``(n, *tail)`` with named sizes filled from ``sizes`` (``hr=128``, ``boxes=16`` …)."""
        out = [int(n)]
        for t in self.tail:
            if isinstance(t, str):
                key = t.split(":", 1)[0]
                if ":" in t:  # an LR side is fixed by the spec itself
                    out.append(int(t.split(":", 1)[1]))
                    continue
                if key not in sizes:
                    raise KeyError(f"{self.name}: size {key!r} not given")
                out.append(int(sizes[key]))
            else:
                out.append(int(t))
        return tuple(out)

    def __str__(self) -> str:
        return self.name


IDS = ArraySpec("ids", ("sample",), "str", codec="none", description="the dataset's own id, unique")
SPLIT = ArraySpec("split", ("sample",), "str", codec="none", description="train / val / test")
FAILURE = ArraySpec("failure", ("sample",), "str", codec="none", description='"" when usable, else the reason')
HR = ArraySpec("hr", ("sample", "y", "x", "channel"), "uint8", ("hr", "hr", 3), (0, 255), "image", "RGB HR crop")
LANDMARKS = ArraySpec("landmarks", ("sample", "point", "xy"), "float32", (68, 2), None, "float",
                      "68 points (x, y) in HR pixels, NaN where no face")
BOXES = ArraySpec(f"{PRIORS_GROUP}/boxes", ("sample", "box", "field"), "float32", ("boxes", 6), None, "float",
                  "part boxes x0 y0 x1 y1 score class in HR pixels, NaN rows pad")
HEATMAP = ArraySpec(f"{PRIORS_GROUP}/heatmap", ("sample", "y", "x"), "float16", ("hr", "hr"), (0.0, 1.0), "float",
                    "part heatmap")
PARSING = ArraySpec(f"{PRIORS_GROUP}/parsing", ("sample", "y", "x"), "uint8", ("hr", "hr"), None, "dense",
                    "face-parsing class map")

#: The arrays whose names do not depend on options, in the order ``facesr data info`` lists them.
FIXED: tuple[ArraySpec, ...] = (IDS, SPLIT, FAILURE, HR, LANDMARKS, BOXES, HEATMAP, PARSING)


def _lr_name(spec: Any) -> tuple[str, int]:
    """(name, size) of an LR spec given as ``LRSpec``, ``"bicubic-pil:16"``, ``"bicubic-pil_16"`` or ``"lr/…"``."""
    from facesr.data.degrade import LRSpec  # degrade imports nothing of ours; keep schema import-light

    if isinstance(spec, str) and spec.startswith(LR_GROUP + "/"):
        spec = spec[len(LR_GROUP) + 1:]
    s = spec if isinstance(spec, LRSpec) else LRSpec.parse(str(spec))
    return s.name, s.size


def lr(spec: Any) -> ArraySpec:
    """The LR array of an LR spec (``lr("bicubic-pil:16").name == "lr/bicubic-pil_16"``)."""
    name, size = _lr_name(spec)
    return ArraySpec(f"{LR_GROUP}/{name}", ("sample", f"y_{name}", f"x_{name}", "channel"), "uint8",
                     (f"lr:{size}", f"lr:{size}", 3), (0, 255), "image", f"LR {name}")


def lr_parsing(spec: Any) -> ArraySpec:
    """W-Net's Parsing Block target at an LR spec's size: HR binary maps bicubic-downsampled (§4.2)."""
    name, size = _lr_name(spec)
    return ArraySpec(f"{LR_PARSING_GROUP}/{name}", ("sample", "part", f"y_{name}", f"x_{name}"), "float32",
                     ("parts", f"lr:{size}", f"lr:{size}"), (0.0, 1.0), "float",
                     f"HR binary parsing maps bicubic-downsampled to {name}")


def spec_for(name: str) -> ArraySpec | None:
    """The spec of a stored array name, or None for a name the schema does not know."""
    for s in FIXED:
        if s.name == name:
            return s
    try:
        if name.startswith(LR_PARSING_GROUP + "/"):
            return lr_parsing(name[len(LR_PARSING_GROUP) + 1:])
        if name.startswith(LR_GROUP + "/"):
            return lr(name)
    except Exception:  # a malformed name is simply unknown
        return None
    return None
