"""Model complexity: parameters, MACs, peak memory, latency and throughput, with the settings named.

MACs are counted by PyTorch's ``torch.utils.flop_counter.FlopCounterMode`` (a dispatch-level counter: it sees
the ATen ops that actually run, after decomposition, so no tracing and no JIT), at batch 1, and reported as
MACs (one fused multiply-add = 1; FlopCounterMode's FLOPs / 2). What is and is not counted:

* counted by FlopCounterMode itself: convolutions (weights only, bias ignored), ``mm``/``addmm`` (linear),
  ``bmm``/``baddbmm`` — every ``@``/``matmul``/``einsum`` reaches one of these, so an attention written as
  ``q @ k.transpose(-2, -1)`` and ``attn @ v`` is counted natively — and the CUDA ``scaled_dot_product_attention``
  kernels (``L·S·E + L·S·Ev`` per batch·head);
* added by facesr (:data:`_FORMULAS`, passed as FlopCounterMode's ``custom_mapping``): the CPU SDPA kernel (same
  formula), interpolation — nearest 1, bilinear 4, bicubic 16 MACs per output element (their taps; the
  anti-aliased variants are counted with the same taps, a lower bound when shrinking) — and ``cdist``
  (``n·m·d`` per batch; GVTNet's adjacency);
* not counted (listed under ``uncounted_ops`` with their call counts): normalisation (batch/layer/instance/group
  norm), pooling, element-wise ops (add, mul, activations, sigmoid, comparisons), softmax and reductions. Pure
  data movement (views, permutes, copies, padding, concatenation, roll, pixel (un)shuffle) is neither counted nor
  listed.

fvcore (used up to facesr 0.1) also counted normalisation and adaptive pooling at about one MAC per element; the
figures moved by that amount (``bench/results/models.json`` holds the new ones).

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` minus the memory allocated before the forward
pass; on CPU the peak resident set size during one forward pass minus the resident size just before it, in a
fresh ``spawn`` subprocess after one warm-up pass, with glibc told to return every allocation of 64 KiB or
more to the system on free (``mallopt``, so the resident size follows the live tensors) and the kernel's peak
mark reset first (Linux ``/proc/self/clear_refs``; elsewhere the growth of ``getrusage`` ``ru_maxrss``, which earlier peaks can
hide). ``tracemalloc`` does not see torch's allocator. Both are for inference under ``torch.inference_mode``
and exclude the weights and the input.

Latency is the median wall time of ``iters`` forward passes at batch 1 after ``warmup`` passes; throughput
is the largest batch size of ``batch_sizes`` divided by the median time of one pass at that size. On CUDA
each timed pass is synchronised. ``amp`` uses ``torch.autocast`` (bfloat16 on CPU, float16 on CUDA).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import queue
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from facesr.errors import ConfigError
from facesr.models.layers import count_params

__all__ = ["count_macs", "count_params", "default_lr_size", "format_count", "peak_memory_mb", "profile"]


# ------------------------------------------------------------------------------------------------ MACs

aten = torch.ops.aten


def _per_output_element(taps: int):
    """A FlopCounterMode formula (it works in FLOPs = 2 · MACs) for ``taps`` MACs per output element."""

    def formula(*args, out_shape=None, **kwargs) -> int:
        return 2 * taps * math.prod(out_shape)

    return formula


def _cdist_formula(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    # (..., n, d) × (..., m, d) → (..., n, m): one subtract-and-accumulate per coordinate of each pair
    return 2 * math.prod(out_shape) * a_shape[-1]


def _cpu_sdpa_formula(q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(q_shape, k_shape, v_shape)


#: facesr's formulas beside FlopCounterMode's own (conv, mm/addmm/bmm/baddbmm, the CUDA SDPA kernels).
_FORMULAS = {
    aten.upsample_nearest2d: _per_output_element(1),
    aten._upsample_nearest_exact2d: _per_output_element(1),
    aten.upsample_bilinear2d: _per_output_element(4),
    aten._upsample_bilinear2d_aa: _per_output_element(4),
    aten.upsample_bicubic2d: _per_output_element(16),
    aten._upsample_bicubic2d_aa: _per_output_element(16),
    aten._cdist_forward: _cdist_formula,
    aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_formula,
}


def _custom_mapping() -> dict:
    """:data:`_FORMULAS` keyed by packet (where FlopCounterMode looks the formula up) and by each overload: an
    overload found in the mapping is not decomposed first (without it nearest upsampling would decompose into
    an uncounted ``_unsafe_index``)."""
    mapping: dict = dict(_FORMULAS)
    for packet in _FORMULAS:
        for overload in packet.overloads():
            mapping[getattr(packet, overload)] = _FORMULAS[packet]
    return mapping

#: Data movement and bookkeeping: neither counted nor listed as uncounted.
_MOVEMENT = {
    "_to_copy", "_unsafe_view", "alias", "as_strided", "cat", "clone", "contiguous", "copy_", "detach", "empty",
    "empty_like", "empty_strided", "expand", "flip", "index", "lift_fresh", "new_empty", "new_empty_strided",
    "new_zeros", "permute", "reflection_pad2d", "repeat", "roll", "select", "slice", "split", "split_with_sizes",
    "squeeze", "stack", "t", "transpose", "unbind", "unfold", "unsqueeze", "view", "zeros", "zeros_like",
    "constant_pad_nd", "pad", "pixel_shuffle", "pixel_unshuffle", "unsafe_split", "arange", "lift_fresh_copy",
    "scalar_tensor", "ones", "ones_like", "full", "full_like", "gather", "index_select", "_reshape_alias", "reshape",
    "flatten", "chunk",
}


def _op_name(packet) -> str:
    return str(packet).split(".", 1)[-1]


class _OpCalls(TorchDispatchMode):
    """Counts every ATen op that reaches execution (entered outside FlopCounterMode, so after its decompositions)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls[func._overloadpacket] += 1
        return func(*args, **(kwargs or {}))


class _Tensors(nn.Module):
    """Wraps a model so that a dict output becomes a tuple of its tensors."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        out = self.model(x)
        if isinstance(out, dict):
            return tuple(out.values())
        return out


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> dict[str, Any]:
    """MACs of one forward pass on ``torch.zeros(input_shape)`` (include the batch dim), model in eval mode.

    Returns ``{"macs": int, "by_operator": {op: macs}, "uncounted_ops": {op: calls}}`` with ATen op names
    (``convolution``, ``bmm``, ``upsample_bicubic2d`` …). The model's training flag is restored afterwards;
    inputs are built on the device of the model's first parameter.
    """
    from torch.utils.flop_counter import FlopCounterMode

    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.zeros(tuple(input_shape), device=device)
    was_training = model.training
    model.eval()
    calls = _OpCalls()
    counter = FlopCounterMode(display=False, custom_mapping=_custom_mapping())
    try:
        with torch.no_grad(), calls, counter:
            _Tensors(model)(x)
    finally:
        model.train(was_training)
    flops = counter.get_flop_counts().get("Global", {})
    by_op = {_op_name(k): int(v) // 2 for k, v in flops.items()}
    uncounted = {
        _op_name(k): n for k, n in calls.calls.items()
        if k not in _FORMULAS and k not in counter.flop_registry and _op_name(k).rstrip("_") not in _MOVEMENT and _op_name(k) not in _MOVEMENT
    }
    return {"macs": sum(by_op.values()), "by_operator": by_op, "uncounted_ops": uncounted}


# ---------------------------------------------------------------------------------------------- memory


def _proc_status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux ≥ 4.0, ``/proc/self/clear_refs`` ← 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _rss_peak_bytes() -> int:
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _pin_malloc():
    """glibc only: serve every allocation ≥ 64 KiB by mmap and return it on free (no dynamic threshold), so
    that the resident size follows live tensors instead of the allocator's cache. Returns libc or None."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD (fixing it also disables the dynamic threshold)
        libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD
        return libc
    except (OSError, AttributeError):
        return None


def _child_peak(model: nn.Module, shape: tuple[int, ...], threads: int, amp: bool, channels_last: bool, q) -> None:
    import gc

    try:
        libc = _pin_malloc()
        torch.set_num_threads(threads)
        model.eval()
        x = torch.rand(shape)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)

        def forward() -> None:
            with torch.inference_mode(), _autocast("cpu", amp):
                model(x)

        forward()  # warm-up: one-time allocations (kernel caches) are not the model's peak
        gc.collect()
        if libc is not None:
            libc.malloc_trim(0)
        if _reset_peak_rss() and (rss := _proc_status_kib("VmRSS")) is not None:
            forward()
            q.put(("ok", (_proc_status_kib("VmHWM") - rss) * 1024, "cpu-peak-rss-delta-subprocess"))
            return
        before = _rss_peak_bytes()
        forward()
        q.put(("ok", _rss_peak_bytes() - before, "cpu-maxrss-delta-subprocess"))
    except BaseException as exc:  # reported to the parent
        q.put(("error", repr(exc), ""))


def peak_memory_mb(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    device: str = "cpu",
    amp: bool = False,
    channels_last: bool = False,
    timeout_s: float = 600.0,
) -> float:
    """Peak extra memory (MiB) of one inference pass on ``torch.rand(input_shape)``; see the module docstring."""
    return _peak_memory(model, input_shape, device, amp, channels_last, timeout_s)[0]


def _peak_memory(
    model: nn.Module, input_shape: Sequence[int], device: str, amp: bool, channels_last: bool, timeout_s: float = 600.0
) -> tuple[float, str]:
    """``(peak MiB, how it was measured)``: the CPU child falls back to ``ru_maxrss`` where Linux's
    ``clear_refs`` is unavailable, and the label says which it used."""
    shape = tuple(input_shape)
    if torch.device(device).type == "cuda":
        model = model.to(device).eval()
        x = torch.rand(shape, device=device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        with torch.inference_mode(), _autocast("cuda", amp):
            model(x)
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20, "cuda-max-allocated"
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(
        target=_child_peak, args=(model.cpu(), shape, torch.get_num_threads(), amp, channels_last, q), daemon=True
    )
    proc.start()
    deadline = time.monotonic() + timeout_s
    result = None
    try:
        while result is None:
            try:
                result = q.get(timeout=0.5)
            except queue.Empty:
                if not proc.is_alive() and q.empty():
                    raise RuntimeError(f"peak-memory subprocess died (exit code {proc.exitcode})") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"peak-memory subprocess took over {timeout_s:.0f} s") from None
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    status, value, method = result
    if status != "ok":
        raise RuntimeError(f"peak-memory subprocess failed: {value}")
    return value / 2**20, method


# ---------------------------------------------------------------------------------------------- timing


def _autocast(device_type: str, amp: bool):
    if not amp:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if device_type == "cpu" else torch.float16
    return torch.autocast(device_type=device_type, dtype=dtype)


def _time_pass(fn, x: torch.Tensor, *, warmup: int, iters: int, cuda: bool) -> list[float]:
    times = []
    for i in range(warmup + iters):
        if cuda:
            torch.cuda.synchronize(x.device)
        t0 = time.perf_counter()
        fn(x)
        if cuda:
            torch.cuda.synchronize(x.device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def format_count(n: float) -> str:
    """``7306371`` → ``"7.31M"``; ``3.99e9`` → ``"3.99G"``."""
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return str(int(n))


def profile(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    device: str = "cpu",
    batch_sizes: Sequence[int] = (1, 16),
    amp: bool = False,
    channels_last: bool = False,
    compile: bool = False,
    warmup: int = 2,
    iters: int = 5,
    memory: bool = True,
) -> dict[str, Any]:
    """Profile ``model`` on inputs of shape ``input_shape`` (``(C, H, W)``, or ``(B, C, H, W)`` whose B is ignored).

    Returns a JSON-ready dict: ``params``, ``macs`` (at batch 1, fp32, eager), ``gmacs``, ``by_operator``,
    ``uncounted_ops``, ``latency_ms`` (median at batch ``batch_sizes[0]``), ``throughput`` (images/s at
    ``max(batch_sizes)``), ``peak_memory_mb`` (batch ``batch_sizes[0]``; ``None`` when ``memory=False``),
    ``times_ms`` (every timed pass per batch size) and the settings (``device``, ``torch``, ``threads``,
    ``amp``, ``channels_last``, ``compile``, ``warmup``, ``iters``). The model is moved to ``device`` and
    left in eval mode (and in channels-last layout when asked); its weights are not changed.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 4:
        shape = shape[1:]
    if len(shape) != 3:
        raise ConfigError(f"input_shape must be (C, H, W) or (B, C, H, W), got {tuple(input_shape)}")
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but CUDA is not available", hint="use --device cpu")
    bss = sorted({int(b) for b in batch_sizes})
    model = model.to(dev).eval()

    params = count_params(model)
    macs = count_macs(model, (1, *shape))

    run_model: nn.Module = model
    if channels_last:
        run_model = run_model.to(memory_format=torch.channels_last)
    fn = torch.compile(run_model) if compile else run_model

    def forward(x: torch.Tensor) -> None:
        with torch.inference_mode(), _autocast(dev.type, amp):
            fn(x)

    times: dict[int, list[float]] = {}
    for bs in bss:
        x = torch.rand((bs, *shape), device=dev)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        times[bs] = _time_pass(forward, x, warmup=warmup, iters=iters, cuda=cuda)

    peak, peak_method = None, None
    if memory:
        peak, peak_method = _peak_memory(model, (bss[0], *shape), device, amp, channels_last)

    lat_bs, thr_bs = bss[0], bss[-1]
    lat = statistics.median(times[lat_bs])
    thr = thr_bs / statistics.median(times[thr_bs])
    return {
        "params": params,
        "params_str": format_count(params),
        "macs": macs["macs"],
        "gmacs": macs["macs"] / 1e9,
        "macs_batch": 1,
        "by_operator": macs["by_operator"],
        "uncounted_ops": macs["uncounted_ops"],
        "input_shape": list(shape),
        "latency_ms": lat * 1e3,
        "latency_batch": lat_bs,
        "throughput": thr,
        "throughput_batch": thr_bs,
        "peak_memory_mb": peak,
        "peak_memory_batch": lat_bs,
        "peak_memory_method": peak_method,
        "times_ms": {str(b): [t * 1e3 for t in ts] for b, ts in times.items()},
        "device": torch.cuda.get_device_name(dev) if cuda else "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "amp": amp,
        "channels_last": channels_last,
        "compile": compile,
        "warmup": warmup,
        "iters": iters,
    }


def default_lr_size(model: nn.Module, hr_size: int = 128) -> int:
    """The LR side a model expects: ``model.lr_size``, else ``hr_size // scale`` with ``model.scale`` (or
    ``model.cfg.scale`` when the model has no ``scale``), else 16 (×8, the facesr default; ``scale = None``
    means any LR size). A discriminator (``kind == "discriminator"``) gets ``hr_size``."""
    from facesr.models.catalog import model_scale

    if getattr(model, "kind", "sr") == "discriminator":
        return hr_size
    lr = getattr(model, "lr_size", None)
    if lr:
        return int(lr)
    scale = model_scale(model)
    return hr_size // scale if scale else 16
