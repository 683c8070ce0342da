"""facesr.metrics: pure metric functions (numpy and torch twins), named by the protocol they follow.

Submodules are imported explicitly by their users (nothing heavy happens here):
``protocols`` (PSNR/SSIM under ``dic``, ``basicsr``, ``sparnet``, ``sfmnet``, ``rgb``), ``ssim`` (the SSIM
kernels), ``msssim``, ``lpips``, ``regions`` (per-component PSNR), ``face`` (landmark distance, identity),
``evaluate`` (the one evaluator: ``evaluate(predict, batches, protocols, extras, …)``), ``sources`` (folder and
store batches), ``report`` (markdown, CSV, grid, the multi-resolution table), ``pixels`` (``to_uint8``, the
bicubic baseline), ``backbones`` (local ImageNet trunks).
"""

from facesr.metrics.protocols import DEFAULT_PROTOCOL, PROTOCOLS, Protocol, psnr, psnr_ssim, psnr_ssim_torch, ssim

__all__ = ["DEFAULT_PROTOCOL", "PROTOCOLS", "Protocol", "psnr", "psnr_ssim", "psnr_ssim_torch", "ssim"]
