"""The staged build: stages (pure per-chunk functions), the DAG and its content keys, resume and locking,
and execution on dask. Import the pieces explicitly (``from facesr.pipeline.build import build_store``);
nothing is imported here."""

__all__ = ["build", "graph", "hashing", "lock", "options", "providers", "reconcile", "runner", "stages", "status",
           "tasks", "verify"]
