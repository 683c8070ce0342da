"""The forkserver's warm-up: the landmarker is loaded before the workers fork (facesr/pipeline/warm.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from facesr.pipeline import warm


def test_warm_loads_the_landmarker_into_the_thread_cache():
    spec = ["landmarker", "dlib68", {"upsample": 1, "fallback": "center"}, None]
    code = ("import facesr.pipeline.warm\n"
            "from facesr.pipeline import providers\n"
            "from facesr.priors import landmarks\n"
            "assert landmarks._PREDICTORS, 'predictor not loaded'\n"
            "assert getattr(landmarks._THREAD, 'detector', None) is not None, 'HOG detector not built'\n"
            "assert len(providers._local.cache) == 1\n")
    env = {**os.environ, warm.ENV: json.dumps([spec])}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    env[warm.ENV] = "[]"  # nothing asked: nothing loaded
    cold = code.replace("assert landmarks._PREDICTORS", "assert not landmarks._PREDICTORS")
    cold = cold.split("assert getattr")[0]
    subprocess.run([sys.executable, "-c", cold], env=env, check=True, timeout=120)


def test_only_dlib_providers_are_warmed():
    # torch-backed providers would start thread pools in the forkserver: never warmed
    assert warm.warm([["detector", "yoloworld-random", {"seed": 0}, None], ["parser", "landmarks", {}, None]]) == 0
