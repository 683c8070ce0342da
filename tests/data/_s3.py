"""A local S3 server (moto's server mode) for the URL tests: started once per test module, stopped after it.

Tests use the ``s3_endpoint`` fixture (it skips only where moto or s3fs is missing or the server cannot
start) and :func:`s3_env` to point the AWS settings at it.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server on 127.0.0.1, started for this module and stopped after it."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("s3fs") is None:
        pytest.skip("moto[server] and s3fs are needed for the S3 test")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except Exception:  # noqa: BLE001 - not up yet
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.skip("the local S3 server (moto) could not start")
            time.sleep(0.2)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()  # fsspec caches filesystems by arguments: not one of a dead server
    try:
        yield url
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def s3_env(endpoint: str) -> dict[str, str]:
    """The AWS settings that point boto (and so s3fs, in this process and in subprocesses) at ``endpoint``."""
    return {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint}


def make_bucket(monkeypatch, endpoint: str, bucket: str) -> None:
    """Set the AWS settings for this test and create ``bucket`` on the server (if it is not there yet)."""
    import s3fs

    for k, v in s3_env(endpoint).items():
        monkeypatch.setenv(k, v)
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    if not fs.exists(bucket):  # one bucket per name for the whole server's life
        fs.mkdir(bucket)
