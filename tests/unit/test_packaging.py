"""What `make run` installs is enough for every command: each third-party
module that jutella's own code imports belongs to a distribution named in
pyproject.toml's [project] dependencies, not only in the test extras (found
when `jutella bench` failed on a clean clone installed with `make run`: it
imports httpx, which only the tests had)."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _installed_with(requirement: str) -> set[str]:
    """A requirement's distribution and everything it pulls in here, with the
    extras asked for (uvicorn[standard], sqlalchemy[asyncio]) and no others."""
    seen: set[str] = set()
    todo = [Requirement(requirement)]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        key = f"{name}[{','.join(sorted(req.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            reqs = requires(name) or []
        except PackageNotFoundError:  # a dependency for another Python (its marker is false here)
            continue
        for text in reqs:
            sub = Requirement(text)
            extras = req.extras or {""}
            if sub.marker is None or any(sub.marker.evaluate({"extra": extra}) for extra in extras):
                todo.append(sub)
    return {key.split("[")[0] for key in seen}


def test_every_module_jutella_imports_is_installed_by_make_run():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime: set[str] = set()
    for requirement in project["dependencies"]:
        runtime |= _installed_with(requirement)
    owners = packages_distributions()
    missing = {}
    for path in (ROOT / "src" / "jutella").rglob("*.py"):
        if path.relative_to(ROOT / "src" / "jutella").as_posix() in OPTIONAL_MODULES:
            continue  # checked below
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top == "jutella" or top in sys.stdlib_module_names:
                    continue
                dists = {canonicalize_name(d) for d in owners.get(top, [])}
                if not dists:
                    pytest.fail(f"{path.relative_to(ROOT)} imports {top}, which no installed distribution provides")
                if not dists & runtime:
                    missing.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    assert not missing, f"imported but installed only with the test extras: {missing}"


# jutella's modules that need an optional extra, and the one place that imports each (when configured)
OPTIONAL_MODULES = {"store/s3files.py": ("s3", "services.py")}


def test_an_optional_extra_is_imported_only_where_it_is_configured():
    """store/s3files.py (boto3, the extra ``s3``) is imported by services.py
    alone, inside the function that builds the configured store: `make run`
    without the extra serves with the database's store."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for module, (extra, importer) in OPTIONAL_MODULES.items():
        assert extra in extras
        dotted = "jutella." + module.removesuffix(".py").replace("/", ".")
        for path in (ROOT / "src" / "jutella").rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            top_level = {id(n) for n in tree.body}
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module == dotted:
                    assert path.relative_to(ROOT / "src" / "jutella").as_posix() == importer, path
                    assert id(node) not in top_level, f"{path} imports {dotted} at module level"


def test_the_locked_versions_fall_inside_pyproject_ranges():
    """`make run` installs requirements.lock's exact versions under
    pyproject.toml's ranges (pip -c): a pin that left a range (the tested
    series of a library whose internals jutella uses, say) would fail there."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    locked = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            locked[canonicalize_name(name)] = version.strip()
    outside = {}
    for text in project["dependencies"] + project["optional-dependencies"]["test"]:
        req = Requirement(text)
        version = locked.get(canonicalize_name(req.name))
        assert version is not None, f"{req.name} is not in requirements.lock"
        if not req.specifier.contains(version, prereleases=True):
            outside[req.name] = (str(req.specifier), version)
    assert not outside, outside
