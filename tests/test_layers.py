"""The package layering the README promises: only generator/ stands on bpy, and the store,
composer and trainer sides never import generator/ (they must work without Blender)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions; relative imports resolved."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            # "from scenes import layouts" imports the module scenes.layouts
            out |= {f"{base}.{a.name}" for a in node.names} | {base}
    return out


def test_only_generator_imports_bpy_and_nothing_blender_free_imports_generator():
    checked = 0
    for package in ("scenes", "composer", "trainer"):
        for path in (ROOT / package).rglob("*.py"):
            bad = {m for m in imported_modules(path) if m.split(".")[0] in ("bpy", "mathutils", "generator")}
            assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
            checked += 1
    assert checked > 20


def test_no_import_cycles_in_scenes_even_through_local_imports():
    mods = {f"scenes.{p.stem}": p for p in (ROOT / "scenes").glob("*.py") if p.stem != "__init__"}
    graph = {m: {d for d in imported_modules(p) if d in mods and d != m} for m, p in mods.items()}
    assert "scenes.layouts" in graph["scenes.sampling"]
    done, stack = set(), []

    def visit(m):
        assert m not in stack, "import cycle: " + " -> ".join(stack[stack.index(m):] + [m])
        if m in done:
            return
        stack.append(m)
        for d in sorted(graph[m]):
            visit(d)
        stack.pop()
        done.add(m)
    for m in sorted(graph):
        visit(m)
