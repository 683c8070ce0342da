"""Training augmentation, applied identically to HR, every LR and every prior of a batch (issue 10, item 1).

Transforms (``AugmentConfig``), per sample, in this order:

``rescale: [lo, hi]`` (MRRNet §4.2; its ``data/celeba_dataset.py`` ``Scale``, mode ``"mrrnet"``)
    ``s ~ U(lo, hi)``. If ``int(S·s) > S`` a window is drawn as torchvision's
    ``RandomResizedCrop.get_params`` does (area fraction ``U(2 − hi, 1)``, aspect ratio log-uniform in
    ``[3/4, 4/3]``, ten tries, else the whole image) and resized back to ``S × S`` with PIL bicubic (the
    released code's ``resized_crop``); if ``int(S·s) < S`` the face is shrunk to ``int(S·s)`` (PIL
    bilinear, torchvision's default) and centred on black; else it is unchanged. The released code cropped
    the original photo; facesr only has the ``S × S`` HR crop, so the window is taken from it.
    Mode ``"zoom"``: a square window of side ``S/s`` at a uniform offset (no shrinking). Every LR image of
    the batch is then made again from the new HR with :func:`facesr.data.degrade.resize` and the
    configured method on the CPU, per sample — so for an unchanged sample (``s = 1``) it is bit-identical
    to ``degrade.resize(hr)``. Priors follow the same window with ``grid_sample`` (bilinear for float maps,
    nearest for class maps; zeros outside), landmarks by the same affine map.
``hflip: p``
    a horizontal flip with probability ``p``.
``rot90: true`` (BasicSR ``augment(hflip, rotation)``, GVTNet's ``use_rot``)
    a vertical flip with probability 0.5, then a transpose (H ↔ W) with probability 0.5; with ``hflip``
    this gives BasicSR's eight dihedral transforms.

Landmarks ``(N, 68, 2)`` (x, y) with pixel centres at integers: a flip maps ``x → S − 1 − x``; a transpose
swaps x and y. Whenever a sample's whole transform is a reflection (an odd number of flips/transposes),
the 68 indices are permuted left ↔ right (:data:`MIRROR_68`: 36 ↔ 45, 0 ↔ 16, …) so that every index keeps
its anatomical meaning; a rotation (an even number) keeps them.

Batch layout: either the loader's float layout (``hr``/``lr*`` ``(N, 3, h, w)`` float in [0, 1],
``heatmap`` ``(N, 1, S, S)``, ``parsing`` ``(N, S, S)``) or the raw one (``hr``/``lr*`` ``(N, h, w, 3)``
uint8, maps ``(N, S, S)``). Any other tensor whose last two axes are ``S × S`` or an LR image's size is a
map (component masks too); ``landmarks`` are points; ``index`` and non-tensors pass through; any other
tensor is a :class:`ConfigError` (it would silently disagree with its image). Outputs keep each input's
dtype, layout and device; flips run on the batch's device.

Determinism: each sample's draws come from a counter-based generator (numpy Philox) keyed by
``(seed, epoch)`` with the sample id (the store row, ``batch["index"]``) in the counter, so a sample's
transform depends on nothing else — not the batch it lands in, the rank, or how often it was resumed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from facesr.errors import ConfigError

__all__ = ["MIRROR_68", "AugmentConfig", "SampleTransform", "augment_batch", "flip_maps", "flip_points",
           "from_config", "sample_transforms"]

#: The 68-point (iBUG/dlib) left ↔ right index permutation of a mirrored face.
MIRROR_68: tuple[int, ...] = tuple(
    list(range(16, -1, -1))  # jaw 0..16
    + list(range(26, 21, -1)) + list(range(21, 16, -1))  # brows 17..21 ↔ 26..22
    + [27, 28, 29, 30]  # nose bridge
    + [35, 34, 33, 32, 31]  # lower nose
    + [45, 44, 43, 42, 47, 46]  # eye 36..41 → the other eye
    + [39, 38, 37, 36, 41, 40]  # eye 42..47
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lips 48..59
    + [64, 63, 62, 61, 60, 67, 66, 65]  # inner lips 60..67
)
RESCALE_MODES = ("mrrnet", "zoom")
PASS_THROUGH = ("index", "id", "ids", "split")
_DRAWS = 48  # uniforms per sample, whatever the config (so changing one knob does not reshuffle the others)


@dataclass(frozen=True)
class AugmentConfig:
    """What :func:`augment_batch` does. ``rescale=()`` is off; ``degradation`` is the LR method used to
    remake each LR image after a rescale (``facesr.data.degrade.METHODS``)."""

    hflip: float = 0.0
    rot90: bool = False
    rescale: tuple[float, ...] = ()
    rescale_mode: str = "mrrnet"
    degradation: str = "bicubic-pil"

    def __post_init__(self) -> None:
        object.__setattr__(self, "rescale", tuple(float(v) for v in self.rescale))
        if not 0.0 <= float(self.hflip) <= 1.0:
            raise ConfigError(f"augment.hflip is a probability in [0, 1]; got {self.hflip}")
        if self.rescale and (len(self.rescale) != 2 or not 0 < self.rescale[0] <= self.rescale[1]):
            raise ConfigError(f"augment.rescale needs [lo, hi] with 0 < lo <= hi; got {list(self.rescale)}")
        if self.rescale_mode not in RESCALE_MODES:
            raise ConfigError(f"augment.rescale_mode must be one of {RESCALE_MODES}; got {self.rescale_mode!r}")
        if self.rescale_mode == "zoom" and self.rescale and self.rescale[0] < 1:
            raise ConfigError("augment.rescale_mode 'zoom' only enlarges: rescale needs lo >= 1")

    @property
    def active(self) -> bool:
        return bool(self.hflip or self.rot90 or self.rescale)

    @classmethod
    def from_dict(cls, d: Mapping) -> AugmentConfig:
        known = [f.name for f in dataclasses.fields(cls)]
        for key in d:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                raise ConfigError(f"unknown augment setting {key!r}", hint=f"did you mean {close[0]!r}?" if close else
                                  f"known: {', '.join(known)}")
        return cls(**dict(d))


@dataclass(frozen=True)
class SampleTransform:
    """One sample's draws. Source window ``src`` ``(x0, y0, w, h)`` of the HR lands on ``dst`` ``(x0, y0,
    w, h)`` of the output (the rest black); then ``hflip``, ``vflip``, ``transpose`` in that order."""

    src: tuple[int, int, int, int]
    dst: tuple[int, int, int, int]
    hflip: bool
    vflip: bool
    transpose: bool

    @property
    def rescaled(self) -> bool:
        return self.src != self.dst

    @property
    def mirrored(self) -> bool:
        return (self.hflip + self.vflip + self.transpose) % 2 == 1


def _generator(seed: int, epoch: int, sample_id: int) -> np.random.Generator:
    mask = (1 << 64) - 1
    bits = np.random.Philox(key=[int(seed) & mask, int(epoch) & mask], counter=[0, 0, int(sample_id) & mask, 0])
    return np.random.Generator(bits)


def _window(cfg: AugmentConfig, u: np.ndarray, size: int) -> tuple[tuple, tuple]:
    full = (0, 0, size, size)
    if not cfg.rescale:
        return full, full
    lo, hi = cfg.rescale
    s = lo + u[3] * (hi - lo)
    if cfg.rescale_mode == "zoom":
        side = min(size, max(1, int(round(size / s))))
        x0, y0 = int(u[4] * (size - side + 1)), int(u[5] * (size - side + 1))
        return (x0, y0, side, side), full
    scaled = int(size * s)
    if scaled > size:  # torchvision RandomResizedCrop.get_params(img, scale=(2 - hi, 1), ratio=(3/4, 4/3))
        area = float(size * size)
        log_r = (math.log(3 / 4), math.log(4 / 3))
        for t in range(10):
            a, r, ui, uj = u[4 + 4 * t : 8 + 4 * t]
            target = area * ((2 - hi) + a * (1 - (2 - hi)))
            aspect = math.exp(log_r[0] + r * (log_r[1] - log_r[0]))
            w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
            if 0 < w <= size and 0 < h <= size:
                return (int(uj * (size - w + 1)), int(ui * (size - h + 1)), w, h), full
        return full, full  # the fallback: a square image's whole frame
    if scaled < size:  # shrink and centre on black, as the released code's pad branch
        lp = (size - scaled) // 2
        return full, (lp, lp, scaled, scaled)
    return full, full


def sample_transforms(cfg: AugmentConfig, seed: int, epoch: int, sample_ids: Sequence[int],
                      size: int) -> list[SampleTransform]:
    """The transform of each sample: a pure function of ``(cfg, seed, epoch, sample id, HR side)``."""
    out = []
    for sid in sample_ids:
        u = _generator(seed, epoch, int(sid)).random(_DRAWS)
        src, dst = _window(cfg, u, size)
        rot = bool(cfg.rot90)
        out.append(SampleTransform(src, dst, bool(u[0] < cfg.hflip), rot and bool(u[1] < 0.5), rot and bool(u[2] < 0.5)))
    return out


# ------------------------------------------------------------------------------------------ pure maths


def flip_maps(x: torch.Tensor, h: torch.Tensor, v: torch.Tensor, t: torch.Tensor, axes: tuple[int, int]) -> torch.Tensor:
    """Per-sample flips of a batch: ``h``/``v``/``t`` ``(N,)`` bool masks (horizontal flip, vertical flip,
    transpose, applied in that order) on the ``axes = (row_axis, col_axis)`` of ``x`` ``(N, ...)``."""
    ra, ca = axes

    def sel(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(mask.view(-1, *([1] * (x.dim() - 1))), a, b)

    x = sel(h, x.flip(ca), x)
    x = sel(v, x.flip(ra), x)
    if bool(t.any()):
        if x.shape[ra] != x.shape[ca]:
            raise ConfigError(f"rot90 needs square maps; got {tuple(x.shape)}")
        x = sel(t, x.transpose(ra, ca), x)
    return x


def flip_points(p: torch.Tensor, h: torch.Tensor, v: torch.Tensor, t: torch.Tensor, size: int) -> torch.Tensor:
    """The same flips for ``(N, P, 2)`` (x, y) points in a ``size × size`` frame (pixel centres at integers);
    68-point sets whose transform is a reflection get the :data:`MIRROR_68` permutation."""
    x, y = p[..., 0], p[..., 1]
    x = torch.where(h[:, None], (size - 1) - x, x)
    y = torch.where(v[:, None], (size - 1) - y, y)
    x, y = torch.where(t[:, None], y, x), torch.where(t[:, None], x, y)
    out = torch.stack([x, y], dim=-1)
    if p.shape[1] == 68:
        mirrored = (h.int() + v.int() + t.int()) % 2 == 1
        perm = torch.tensor(MIRROR_68, device=p.device)
        out = torch.where(mirrored[:, None, None], out[:, perm], out)
    return out


def _affine_grid(trs: Sequence[SampleTransform], S: int, out_hw: tuple[int, int], device) -> torch.Tensor:
    """``grid_sample`` grids (align_corners=False) mapping each output pixel to its source through the
    window; output ``out_hw`` may be an LR size (the same window in that frame)."""
    oh, ow = out_hw
    grids = []
    for tr in trs:
        sx0, sy0, sw, sh = tr.src
        dx0, dy0, dw, dh = tr.dst
        xo = (torch.arange(ow, dtype=torch.float64) + 0.5) * (S / ow)  # output edge coords in HR pixels
        yo = (torch.arange(oh, dtype=torch.float64) + 0.5) * (S / oh)
        xs = sx0 + (xo - dx0) * (sw / dw)
        ys = sy0 + (yo - dy0) * (sh / dh)
        gx, gy = 2 * xs / S - 1, 2 * ys / S - 1
        grids.append(torch.stack(torch.broadcast_tensors(gx[None, :], gy[:, None]), dim=-1))
    return torch.stack(grids).to(device=device, dtype=torch.float32)


def _resample_maps(x: torch.Tensor, trs, S: int, nearest: bool) -> torch.Tensor:
    """``(N, C, h, w)`` maps through each sample's window (zeros outside)."""
    grid = _affine_grid(trs, S, tuple(x.shape[-2:]), x.device)
    y = F.grid_sample(x.to(torch.float32), grid, mode="nearest" if nearest else "bilinear", padding_mode="zeros",
                      align_corners=False)
    return y.round().to(x.dtype) if nearest else y.to(x.dtype)


def _rescale_points(p: torch.Tensor, trs, S: int) -> torch.Tensor:
    rows = []
    for tr in trs:
        sx0, sy0, sw, sh = tr.src
        dx0, dy0, dw, dh = tr.dst
        rows.append([dw / sw, dx0 - sx0 * dw / sw, dh / sh, dy0 - sy0 * dh / sh])
    a = torch.tensor(rows, dtype=p.dtype, device=p.device)
    x = (p[..., 0] + 0.5) * a[:, :1] + a[:, 1:2] - 0.5
    y = (p[..., 1] + 0.5) * a[:, 2:3] + a[:, 3:4] - 0.5
    return torch.stack([x, y], dim=-1)


def _rescale_hr(hr_u8: np.ndarray, tr: SampleTransform) -> np.ndarray:
    """One HR ``(S, S, 3)`` uint8 through its window with PIL, as the released MRRNet code."""
    from PIL import Image

    S = hr_u8.shape[0]
    sx0, sy0, sw, sh = tr.src
    dx0, dy0, dw, dh = tr.dst
    img = Image.fromarray(hr_u8)
    if (dw, dh) == (S, S):  # crop → bicubic resize (tf.resized_crop on a PIL image)
        return np.asarray(img.crop((sx0, sy0, sx0 + sw, sy0 + sh)).resize((S, S), Image.BICUBIC))
    out = np.zeros_like(hr_u8)  # shrink (tf.resize default: bilinear) and centre on black (tf.pad)
    out[dy0 : dy0 + dh, dx0 : dx0 + dw] = np.asarray(img.resize((dw, dh), Image.BILINEAR))
    return out


# ------------------------------------------------------------------------------------------ the batch


def _image_layout(v: torch.Tensor) -> str | None:
    if v.dim() == 4 and v.dtype == torch.uint8 and v.shape[-1] == 3:
        return "nhwc"
    if v.dim() == 4 and v.shape[1] == 3:
        return "nchw"
    return None


def _to_u8_nhwc(v: torch.Tensor, layout: str) -> np.ndarray:
    x = v.detach().to("cpu")
    if layout == "nchw":
        x = (x.float() * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    return np.ascontiguousarray(x.numpy())


def _from_u8_nhwc(a: np.ndarray, like: torch.Tensor, layout: str) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a)).to(like.device)
    if layout == "nchw":  # the loader's to_float arithmetic: x · (1/255) in float32
        t = t.permute(0, 3, 1, 2).to(torch.float32).mul_(1.0 / 255.0).to(like.dtype)
    return t


def augment_batch(batch: Mapping, cfg: AugmentConfig, seed: int, epoch: int,
                  sample_ids: Sequence[int] | torch.Tensor | None = None) -> dict:
    """The augmented batch (new dict; inputs untouched). ``sample_ids`` defaults to ``batch["index"]``."""
    if not cfg.active:
        return dict(batch)
    if "hr" not in batch:
        raise ConfigError("augmentation needs the batch's 'hr' (the HR frame defines every transform)")
    if sample_ids is None:
        if "index" not in batch:
            raise ConfigError("augmentation needs sample ids: pass sample_ids or load 'index' with the batch")
        sample_ids = batch["index"]
    ids = [int(i) for i in (sample_ids.tolist() if isinstance(sample_ids, torch.Tensor) else sample_ids)]
    hr = batch["hr"]
    hr_layout = _image_layout(hr)
    if hr_layout is None:
        raise ConfigError(f"'hr' must be (N, 3, S, S) float or (N, S, S, 3) uint8; got {tuple(hr.shape)} {hr.dtype}")
    S = hr.shape[1] if hr_layout == "nhwc" else hr.shape[-1]
    if len(ids) != hr.shape[0]:
        raise ConfigError(f"{hr.shape[0]} samples but {len(ids)} sample ids")
    trs = sample_transforms(cfg, seed, epoch, ids, S)
    dev = hr.device
    hmask = torch.tensor([t.hflip for t in trs], device=dev)
    vmask = torch.tensor([t.vflip for t in trs], device=dev)
    tmask = torch.tensor([t.transpose for t in trs], device=dev)
    rescaled = any(t.rescaled for t in trs)
    out: dict = {}
    new_hr = None
    if cfg.rescale:
        u8 = _to_u8_nhwc(hr, hr_layout)
        new_hr = np.stack([_rescale_hr(im, t) if t.rescaled else im for im, t in zip(u8, trs, strict=True)])
    lr_sizes = set()
    for key, v in batch.items():
        if not isinstance(v, torch.Tensor) or key in PASS_THROUGH:
            out[key] = v
            continue
        layout = _image_layout(v)
        if key == "hr" or (key.startswith("lr") and layout is not None):
            axes = (1, 2) if layout == "nhwc" else (2, 3)
            if new_hr is not None:
                if key == "hr":
                    v = _from_u8_nhwc(new_hr, v, layout)
                else:  # remade from the new HR with the preset's degradation (CPU, per sample, exact)
                    from facesr.data.degrade import resize

                    size = (v.shape[axes[0]], v.shape[axes[1]])
                    v = _from_u8_nhwc(np.stack([resize(im, size, cfg.degradation) for im in new_hr]), v, layout)
            if key != "hr":
                lr_sizes.add(v.shape[axes[0]])
            out[key] = flip_maps(v, hmask, vmask, tmask, axes)
        elif key == "landmarks":
            p = _rescale_points(v, trs, S) if rescaled else v
            out[key] = flip_points(p, hmask, vmask, tmask, S)
        else:
            out[key] = v  # maps are handled below, once the LR sizes are known
    for key, v in batch.items():
        if not isinstance(v, torch.Tensor) or key in PASS_THROUGH or key == "hr" or key == "landmarks" or (
                key.startswith("lr") and _image_layout(v) is not None):
            continue
        side = v.shape[-1]
        if v.dim() < 3 or v.shape[-2] != side or (side != S and side not in lr_sizes):
            raise ConfigError(f"augmentation does not know how to transform batch key {key!r} {tuple(v.shape)}",
                              hint="maps must be (N, [C,] S, S) at the HR or an LR size; drop the key or extend "
                                   "facesr.data.augment")
        m = v
        if rescaled:
            four = m if m.dim() == 4 else m.unsqueeze(1)
            nearest = not m.is_floating_point()
            four = _resample_maps(four, trs, S, nearest)
            m = four if v.dim() == 4 else four.squeeze(1)
        out[key] = flip_maps(m, hmask, vmask, tmask, (m.dim() - 2, m.dim() - 1))
    return out


def from_config(a, *, seed: int, lr: str | None = None) -> Callable[[dict, int], dict]:
    """``f(batch, epoch) → batch`` for the trainer from any object with ``hflip``/``rot90``/``rescale``
    (e.g. ``facesr.train.config.AugmentConfig``); ``lr`` (``"bicubic-pil_16"``) names the degradation."""
    fields = {k: getattr(a, k) for k in ("hflip", "rot90", "rescale", "rescale_mode", "degradation") if hasattr(a, k)}
    if isinstance(lr, (list, tuple)):  # several LR arrays (UFVNet): one method for all of them
        lr = lr[0] if lr else None
    if lr and "degradation" not in fields:
        s = str(lr).removeprefix("lr/")
        fields["degradation"] = s.rpartition(":")[0] or s.rpartition("_")[0] or s
    cfg = AugmentConfig.from_dict(fields)

    def augment(batch: dict, epoch: int) -> dict:
        return augment_batch(batch, cfg, seed, epoch)

    augment.config = cfg  # type: ignore[attr-defined]
    return augment
