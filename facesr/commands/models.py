"""``facesr models ...``: list the registered networks; profile params, MACs, memory and speed of one."""

from __future__ import annotations

import dataclasses

import typer

from facesr.commands import _options as O
from facesr.commands import _render as R

app = typer.Typer(help="The registered networks: list them, profile params, MACs, memory and speed.",
                  no_args_is_help=True)


@app.command("list")
def list_cmd(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show each builder's one-line summary."),
    json_out: O.Json = False,
) -> None:
    """Registered networks: parameters, input range, scale (models are built on the meta device, no weights)."""
    from rich.table import Table

    from facesr.models.catalog import catalog

    infos = catalog()
    if json_out:
        R.emit_json([dataclasses.asdict(i) for i in infos])
        return
    table = Table(title="facesr models", title_justify="left")
    for col, kw in (("name", {}), ("params", {"justify": "right"}), ("input range", {}), ("scale", {}),
                    ("kind", {})):
        table.add_column(col, **kw)
    if verbose:
        table.add_column("summary")
    for info in infos:
        params = f"{info.params:,}"
        if info.expected_params is not None and info.expected_params != info.params:
            params += f" (paper {info.expected_params:,})"
        row = [info.name, params, info.input_range, info.scale_label, info.kind]
        table.add_row(*row, *([info.summary] if verbose else []))
    R.out_console().print(table)


@app.command("profile")
def profile_cmd(
    name: str = typer.Argument(..., help="Registered model name (see `facesr models list`)."),
    batch: int = typer.Option(16, "--batch", min=1, max=4096, help="Batch size for the throughput measurement."),
    device: O.Device = "auto",
    lr_size: int = typer.Option(0, "--lr-size", min=0, max=128,
                                help="LR side; 0 = the model's own (16 for ×8, 32 for ×4)."),
    amp: bool = typer.Option(False, "--amp", help="Autocast (bfloat16 on CPU, float16 on CUDA)."),
    channels_last: bool = typer.Option(False, "--channels-last", help="Channels-last memory format."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile before timing."),
    iters: int = typer.Option(5, "--iters", min=1, help="Timed passes per batch size (median reported)."),
    warmup: int = typer.Option(2, "--warmup", min=0, help="Untimed passes before timing."),
    out: O.OutFile = None,
    json_out: O.Json = False,
) -> None:
    """Parameters, MACs, peak memory, batch-1 latency and throughput of one model, with the settings named.

    ``-o FILE`` also writes the full result as JSON; ``--json`` prints it instead of the summary.
    """
    from facesr.metrics.complexity import default_lr_size, format_count, profile
    from facesr.models import build
    from facesr.runtime import resolve_device, restore_threads

    dev = resolve_device(device)
    restore_threads()
    model = build(name)
    size = lr_size or default_lr_size(model)
    res = profile(
        model, (3, size, size), device=dev.type if dev.index is None else str(dev), batch_sizes=(1, batch), amp=amp,
        channels_last=channels_last, compile=compile_, warmup=warmup, iters=iters,
    )
    full = {"model": name, **res}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(R.to_json(full) + "\n")
    if json_out:
        R.emit_json(full)
        return
    settings = (
        f"device {res['device']}, torch {res['torch']}, {res['threads']} threads, amp {'on' if amp else 'off'}, "
        f"channels_last {'on' if channels_last else 'off'}, compile {'on' if compile_ else 'off'}, "
        f"warmup {warmup}, median of {iters}"
    )
    typer.echo(f"{name}: input 3×{size}×{size}")
    typer.echo(f"  params       {format_count(res['params'])} ({res['params']:,})")
    typer.echo(f"  MACs         {res['gmacs']:.2f} G at batch 1 (torch.utils.flop_counter + facesr formulas)")
    mem = res["peak_memory_mb"]
    typer.echo(f"  peak memory  {mem:.0f} MiB at batch {res['peak_memory_batch']} ({res['peak_memory_method']})")
    typer.echo(f"  latency      {res['latency_ms']:.1f} ms at batch {res['latency_batch']}")
    typer.echo(f"  throughput   {res['throughput']:.1f} images/s at batch {res['throughput_batch']}")
    typer.echo(f"  settings     {settings}")
    if out is not None:
        typer.echo(f"  wrote {out}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="models")
