"""The repository's own promises: CI runs exactly the README's test command, and the lock
file pins what pyproject.toml asks for."""
import re
import tomllib
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("```", 2)[1]  # the first fenced block
    return [line for line in block.splitlines()[1:] if line.strip()]


def test_readme_starts_with_two_commands_and_ci_runs_the_second():
    commands = readme_commands()
    assert len(commands) == 2
    assert "pytest" in commands[1] and "gen scenes" in commands[0]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line and not line.startswith(("#", "set ", "cd "))]
    assert commands[1] in ci
    assert all("-c constraints.txt" in c for c in commands), "both README commands install through the lock"


def lock_pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        assert m, f"constraints.txt: '{line}' is not an exact pin"
        name = canonicalize_name(m.group(1))
        assert name not in pins, f"constraints.txt pins {name} twice"
        pins[name] = Version(m.group(2))
    return pins


def project_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    return [r for r in reqs if canonicalize_name(r.name) != "rgsd"]


def test_lock_pins_every_requirement_inside_its_range():
    pins = lock_pins()
    env = default_environment()
    for req in project_requirements():
        if req.marker and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"pyproject.toml asks for {req}, constraints.txt has no pin for it: regenerate the lock"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject.toml's '{req}': regenerate the lock"


def test_lock_says_how_to_regenerate_it():
    head = (ROOT / "constraints.txt").read_text().splitlines()[:12]
    assert any("uv pip compile" in line for line in head)
