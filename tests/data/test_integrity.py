"""A flipped byte in any chunk: `facesr priors verify` names the array and chunk and exits 1."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from facesr.cli import app
from facesr.data import schema
from facesr.data.store import FaceStore


def test_priors_verify_names_the_corrupt_chunk(tmp_path):
    path = tmp_path / "s.zarr"
    fs = FaceStore.create(path, ids=[f"{i:03d}" for i in range(12)], splits=["train"] * 12, chunk=4)
    fs.write(schema.HR, 0, np.random.default_rng(0).integers(0, 256, (12, 128, 128, 3), dtype=np.uint8))
    fs.require(schema.HEATMAP)
    fs.write(schema.HEATMAP, 0, np.full((12, 128, 128), 0.5, np.float16))
    chunk = path / "priors" / "heatmap" / "c" / "2" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[-9] ^= 0x10
    chunk.write_bytes(bytes(data))
    r = CliRunner().invoke(app, ["priors", "verify", "--store", str(path)], env={"COLUMNS": "250"})
    assert r.exit_code == 1, r.output
    assert "priors/heatmap chunk 2 (rows 8–11) is corrupt" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["priors", "verify", "--store", str(path), "--json"])
    assert r.exit_code == 1 and '"corrupt_chunks": 1' in r.output
