"""Prior providers as the pipeline builds them: by kind (``landmarker``, ``detector``, ``parser``) and
registry name, from JSON-able options, once per worker thread.

A provider whose factory declares ``needs_weights`` gets the run's weights directory as ``weights_dir``;
that directory is never part of the options that enter a stage key (it says where files are, not what they
hold: the provider's ``config()`` names the file and its digest). Offline test variants are plain registry
entries (``yoloworld-random``, ``bisenet-random``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from facesr.errors import ConfigError

__all__ = ["KINDS", "factory", "needs_weights", "provider", "provider_config"]

KINDS = ("landmarker", "detector", "parser")

_local = threading.local()


def _registry(kind: str):
    if kind == "detector":
        from facesr.priors.detectors import DETECTORS

        return DETECTORS
    if kind == "parser":
        from facesr.priors.parsing import PARSERS

        return PARSERS
    if kind != "landmarker":
        raise ConfigError(f"unknown provider kind {kind!r}", hint=f"known: {', '.join(KINDS)}")
    return None


def factory(kind: str, name: str) -> Callable[..., Any]:
    """The registered factory of provider ``name`` of ``kind`` (ConfigError with a close match when unknown)."""
    reg = _registry(kind)
    if reg is not None:
        return reg.get(name)
    from facesr.priors.landmarks import DlibLandmarker

    if name != DlibLandmarker.name:
        raise ConfigError(f"unknown landmarker {name!r}", hint=f"known: {DlibLandmarker.name}")
    return DlibLandmarker


def needs_weights(kind: str, name: str) -> bool:
    """Whether the provider reads files from the weights directory (its factory's ``needs_weights``)."""
    return bool(getattr(factory(kind, name), "needs_weights", False))


def _build(kind: str, name: str, options: Mapping[str, Any], weights_dir: str | None):
    from facesr.runtime import offline_env

    offline_env()
    opts = dict(options)
    if kind == "landmarker" and isinstance(opts.get("fallback"), list):
        opts["fallback"] = tuple(opts["fallback"])  # JSON has no tuples
    if needs_weights(kind, name) and weights_dir:
        opts["weights_dir"] = weights_dir
    reg = _registry(kind)
    return factory(kind, name)(**opts) if reg is None else reg.build(name, **opts)


def provider(kind: str, name: str, options: Mapping[str, Any], weights_dir: str | None = None):
    """Provider ``name`` of ``kind`` built with ``options``, cached per worker thread (so per process too).

    Providers hold native handles (dlib, torch) that are not thread-safe, hence one per thread.
    """
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    key = json.dumps([kind, name, dict(options), weights_dir], sort_keys=True, default=str)
    if key not in cache:
        cache[key] = _build(kind, name, options, weights_dir)
    return cache[key]


def provider_config(kind: str, name: str, options: Mapping[str, Any], weights_dir: str | None = None) -> dict:
    """``provider.config()`` (what enters the stage key); builds the provider in this process once, which
    also checks its weights before any work is scheduled."""
    return dict(provider(kind, name, options, weights_dir).config())
