"""One CLI sub-app per stage, one file each; ``facesr.cli`` mounts them via ``register(app)``.

Heavy libraries (torch, zarr, ultralytics) are imported inside the command functions so that
``facesr --help`` stays instant.
"""
