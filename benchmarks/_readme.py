"""Write one benchmark's figures as a section of benchmarks/README.md (replaced on each run)."""
from __future__ import annotations

import datetime
import os
from pathlib import Path

README = Path(__file__).parent / "README.md"
HEADER = """# Benchmarks

Each script prints ratios measured side by side in one run and rewrites its own section below
(between its markers). Machine: the project's 2-core CPU machines unless a section says otherwise;
the 1-minute load average at the time is recorded because other jobs on a shared machine slow
everything down.
"""


def write_section(name: str, command: str, rows: list[tuple[str, str, str]], note: str = "") -> None:
    """rows: (measure, value, goal). Replaces the section ``name`` in benchmarks/README.md."""
    text = README.read_text() if README.exists() else HEADER
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [start, f"## {name}", "", f"`{command}` — measured {datetime.date.today()}, "
             f"{os.cpu_count()} CPUs, load average {load:.1f}.", ""]
    if note:
        lines += [note, ""]
    lines += ["| measure | value | goal |", "|---|---|---|"]
    lines += [f"| {m} | {v} | {g} |" for m, v, g in rows]
    lines.append(end)
    block = "\n".join(lines)
    if start in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    README.write_text(text)
