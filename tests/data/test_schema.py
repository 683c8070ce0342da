"""The store schema: one spec per array, consistent dims/shapes, names resolvable back to specs, checksummed codecs."""

from __future__ import annotations

import pytest
from zarr.codecs import Crc32cCodec

from facesr.data import schema


def test_every_fixed_spec_is_consistent():
    names = [s.name for s in schema.FIXED]
    assert len(set(names)) == len(names)
    for s in schema.FIXED:
        assert s.dims[0] == "sample" and len(s.dims) == len(s.tail) + 1, s.name
        assert schema.spec_for(s.name) is s
        assert s.codec in schema.CODECS and isinstance(s.compressors[-1], Crc32cCodec)
        assert len(s.shape(5, hr=128, boxes=16)) == s.ndim


def test_lr_specs_name_their_dimensions():
    s = schema.lr("bicubic-pil:16")
    assert s.name == "lr/bicubic-pil_16" and schema.lr("bicubic-pil_16") == s == schema.lr("lr/bicubic-pil_16")
    assert s.dims == ("sample", "y_bicubic-pil_16", "x_bicubic-pil_16", "channel") and s.shape(3) == (3, 16, 16, 3)
    p = schema.lr_parsing("bicubic-pil:32")
    assert p.shape(2, parts=5) == (2, 5, 32, 32) and schema.spec_for(p.name) == p and p.is_prior
    assert schema.spec_for("priors/nope") is None and schema.spec_for("lr/") is None


def test_shapes_need_their_named_sizes_and_codecs_can_skip_the_checksum():
    with pytest.raises(KeyError, match="boxes"):
        schema.BOXES.shape(4, hr=128)
    assert schema.HEATMAP.shape(4, hr=64) == (4, 64, 64)
    assert not any(isinstance(c, Crc32cCodec) for c in schema.codec_chain("image", checksum=False))
    assert schema.codec_short(schema.HR.compressors) == "blosc-lz4+shuf,crc32c"
    assert schema.codec_short(schema.IDS.compressors) == "crc32c"
