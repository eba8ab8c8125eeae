"""The package layering the README promises: only generator/ stands on bpy, and the store,
composer and trainer sides never import generator/ (they must work without Blender)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


def test_only_generator_imports_bpy_and_nothing_blender_free_imports_generator():
    checked = 0
    for package in ("scenes", "composer", "trainer"):
        for path in (ROOT / package).rglob("*.py"):
            bad = {m for m in imported_modules(path) if m.split(".")[0] in ("bpy", "mathutils", "generator")}
            assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
            checked += 1
    assert checked > 20
