#!/usr/bin/env python
"""Build a facesr store on a SLURM cluster: start a ``dask_jobqueue.SLURMCluster``, scale it, run
``facesr.pipeline.build.build_store`` on it, close it. One script, nothing left running.

Run it where jobs can be submitted and that stays up for the whole build: inside ``tmux``/``screen`` on
the login node, or as a small SLURM job of its own (it only plans, sends tasks and verifies)::

    # look at the worker job script first (nothing is submitted)
    .venv/bin/python scripts/slurm_build.py --store /shared/stores/celeba.zarr --dataset celeba \\
        --root /shared/data/celeba --lr bicubic-pil:16 --queue cpu --account myproject --print-job-script

    # CPU providers (landmarks, offline): 4 jobs × 8 single-threaded workers
    .venv/bin/python scripts/slurm_build.py --store /shared/stores/celeba.zarr --dataset celeba \\
        --root /shared/data/celeba --lr bicubic-pil:16 --queue cpu --account myproject --jobs 4 --cores 8

    # GPU providers (YOLO-World, BiSeNet): one GPU and one worker per job
    .venv/bin/python scripts/slurm_build.py ... --detector yoloworld --parser bisenet \\
        --weights-dir /shared/weights --queue gpu --gpu --jobs 2

    # the same script without SLURM (a LocalCluster of N worker processes): try it before submitting
    .venv/bin/python scripts/slurm_build.py --store stores/tiny.zarr --dataset folder --root faces --local 2

    # or submit the driver itself
    sbatch -p cpu -c 2 --mem 8G -t 12:00:00 --wrap ".venv/bin/python scripts/slurm_build.py ... --jobs 4"

The store, its ``.facesr`` folder, the dataset and the weights must be on storage that every node sees at
the same path (paths are made absolute before anything is sent). Interrupted? Run the same command again:
only the chunks that were not committed are computed. Exit code 0 when the build verifies, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    b = p.add_argument_group("the build (as `facesr priors build`)")
    b.add_argument("--store", required=True, help="The store to build or finish (shared storage).")
    b.add_argument("--dataset", help="Source name (celeba, folder, ...) to create it; omit to finish a store.")
    b.add_argument("--root", help="Dataset folder (shared storage).")
    b.add_argument("--split-file", help="folder source: lines '<name> <split>'.")
    b.add_argument("--lr", default=None, help="LR sets, e.g. bicubic-pil:16,bicubic-pil:32.")
    b.add_argument("--crop", default=None, help="aligned | landmarks | resize (default: as recorded, else aligned).")
    b.add_argument("--detector", default="landmarks", help="landmarks (offline) | yoloworld.")
    b.add_argument("--parser", default="landmarks", help="landmarks (offline) | bisenet.")
    b.add_argument("--weights-dir", default=None, help="Weights folder (shared storage); never downloaded.")
    b.add_argument("--chunk", type=int, default=None, help="Rows per chunk when creating the store (256).")
    b.add_argument("--limit", type=int, default=None, help="Use only N records.")
    b.add_argument("--timeout", type=float, default=None,
                   help="Seconds to wait for the first worker (a queue that never starts jobs); default: wait.")
    c = p.add_argument_group("the cluster")
    c.add_argument("--local", type=int, metavar="N", default=None,
                   help="No SLURM: a LocalCluster of N single-threaded worker processes.")
    c.add_argument("--queue", help="SLURM partition (-p).")
    c.add_argument("--account", help="SLURM account (-A).")
    c.add_argument("--jobs", type=int, default=2, help="SLURM jobs to start (default 2).")
    c.add_argument("--cores", type=int, default=8, help="CPU cores per job (default 8).")
    c.add_argument("--memory", default="32GB", help="Memory per job (default 32GB).")
    c.add_argument("--walltime", default="02:00:00", help="Job time limit (default 02:00:00).")
    c.add_argument("--gpu", action="store_true", help="One GPU per job (--gres=gpu:1) and one worker per job.")
    c.add_argument("--interface", default=None, help="Network interface the workers reach the scheduler on (ib0).")
    c.add_argument("--venv", default=str(Path(sys.prefix)), help="Virtual env the jobs activate (default: this one).")
    c.add_argument("--print-job-script", action="store_true", help="Print the worker job script and exit.")
    args = p.parse_args(argv)
    for name in ("jobs", "cores", "local", "chunk", "limit"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name} must be at least 1, got {value}")
    if args.dataset and not args.root:
        p.error("--dataset needs --root")
    return args


def cluster_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``SLURMCluster`` arguments: CPU jobs run one single-threaded worker per core (dlib and the heatmap maths
    hold the GIL); GPU jobs one worker that owns the job's GPU and all its cores."""
    prologue = [f"source {args.venv}/bin/activate"]
    kw: dict[str, Any] = {
        "queue": args.queue,
        "account": args.account,
        "cores": args.cores,
        "memory": args.memory,
        "walltime": args.walltime,
        "job_name": "facesr-build",
    }
    if args.interface:
        kw["interface"] = args.interface
    if args.gpu:
        kw["processes"] = 1
        kw["job_extra_directives"] = ["--gres=gpu:1"]
        prologue.append(f"export OMP_NUM_THREADS={args.cores}")
    else:
        kw["processes"] = args.cores
        prologue.append("export OMP_NUM_THREADS=1")
    kw["job_script_prologue"] = prologue
    return {k: v for k, v in kw.items() if v is not None}


def make_cluster(args: argparse.Namespace):
    """A started cluster: a LocalCluster with ``--local N``, else a SLURMCluster scaled to ``--jobs``."""
    if args.local:
        from distributed import LocalCluster

        return LocalCluster(n_workers=args.local, threads_per_worker=1, processes=True, dashboard_address=None)
    from dask_jobqueue import SLURMCluster

    cluster = SLURMCluster(**cluster_kwargs(args))
    cluster.scale(jobs=args.jobs)
    return cluster


class _Lines:
    """A build reporter for batch logs: one line per stage and per message (no progress bars)."""

    def begin(self, stages) -> None:
        for name, total, done in stages:
            print(f"stage {name}: {done}/{total} rows done before this run", file=sys.stderr, flush=True)

    def advance(self, result) -> None:
        pass

    def message(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)


def build(args: argparse.Namespace, address: str):
    """``build_store`` on the cluster at ``address``; returns its BuildReport."""
    from facesr.pipeline.build import build_store
    from facesr.pipeline.options import BuildOptions, RunOptions, SourceSpec

    source = None
    if args.dataset:
        options = {"split_file": str(Path(args.split_file).absolute())} if args.split_file else {}
        source = SourceSpec(args.dataset, args.root, options, limit=args.limit)
    options = BuildOptions(crop=args.crop, lr=args.lr or (), chunk=args.chunk, detector=args.detector,
                           parser=args.parser)
    run = RunOptions(scheduler=address, cluster_timeout=args.timeout, weights_dir=args.weights_dir)
    return build_store(args.store, options, source=source, run=run, reporter=_Lines())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.print_job_script:
        from dask_jobqueue import SLURMCluster

        cluster = SLURMCluster(**cluster_kwargs(args))  # starts no job; only renders
        try:
            print(cluster.job_script())
        finally:
            cluster.close()
        return 0
    from facesr.errors import FacesrError

    cluster = make_cluster(args)
    try:
        print(f"cluster: {cluster.scheduler_address} ({type(cluster).__name__})", file=sys.stderr, flush=True)
        report = build(args, cluster.scheduler_address)
    except FacesrError as exc:
        print(f"error: {exc}" + (f"\n  hint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 1
    finally:
        cluster.close()  # the SLURM jobs (or local workers) end here, also on an error or Ctrl-C
    print(json.dumps(report.to_dict(), indent=2, default=str))
    return 0 if report.verify is None or report.verify["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
