"""Every `facesr ...` line in README.md and docs/*.md parses with today's option names (no unknown flag, no value
out of range): the commands are parsed by click exactly as a shell would pass them, but not run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.main import get_command

from facesr.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _command_lines(text: str) -> list[str]:
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            for part in re.split(r"&&|;", line):
                part = part.strip()
                m = re.match(r"^(?:\.venv/bin/)?facesr\s+(.*)$", part)
                if m:
                    out.append(m.group(1))
    return out


CASES = [(doc.name, line) for doc in DOCS for line in _command_lines(doc.read_text())]


def test_docs_have_commands():
    assert len([c for c in CASES if c[0] == "README.md"]) >= 15


@pytest.mark.parametrize(("doc", "line"), CASES, ids=[f"{d}:{i}" for i, (d, _) in enumerate(CASES)])
def test_documented_command_parses(doc, line):
    args = shlex.split(line.replace("$S", "/shared"))
    cmd, name = get_command(app), "facesr"
    while hasattr(cmd, "commands") and args and not args[0].startswith("-"):
        name = args.pop(0)
        assert name in cmd.commands, f"{doc}: unknown command {name!r} in `facesr {line}`"
        cmd = cmd.commands[name]
    if hasattr(cmd, "commands"):
        return  # `facesr --help`-style lines
    ctx = cmd.make_context(name, args)  # raises a usage error for an unknown flag or a bad value
    ctx.close()
