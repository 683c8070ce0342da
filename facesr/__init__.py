"""facesr: facial priors for face super-resolution, built once offline into zarr stores.

Nothing happens at import time: subpackages are imported explicitly by their users.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
