"""The layering rule of CONTRIBUTING.md: a module imports only from its own layer or the layers below
it (imports inside functions included). Checked on the source with ``ast``, not by importing."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "expportrait"
# lowest first; modules of one layer may import each other
LAYERS = [
    {"__init__", "errors", "paths", "config", "checkpoint"},
    {"data"},
    {"detection"},
    {"head"},
    {"render"},
    {"metrics"},
    {"tracking"},
    {"transfer"},
    {"generator"},
    {"engines"},
    {"pipeline", "export", "outputs"},
    {"live", "group"},
    {"commands"},
    {"cli", "__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _room(parts: tuple[str, ...]) -> str:
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods = [node.module] if node.module != "expportrait" else \
                [f"expportrait.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        else:
            continue
        for m in mods:
            if m.startswith("expportrait."):
                yield node.lineno, m.split(".")[1]


def test_every_room_has_a_layer():
    rooms = {_room(p.relative_to(ROOT).parts) for p in ROOT.rglob("*.py")}
    assert rooms <= set(RANK), f"rooms without a layer: {sorted(rooms - set(RANK))}"


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_from_a_layer_above(path):
    me = _room(path.relative_to(ROOT).parts)
    bad = [f"line {line}: {target}" for line, target in _imports(path)
           if target in RANK and RANK[target] > RANK[me]]
    assert not bad, f"{path.relative_to(ROOT)} ({me}) imports from a higher layer: {bad}"
