"""What the wheel carries: every data file the packages read at run time. The Docker image
installs the wheel, not the source tree, and `packloop report officer` failed there with
"No such file … streams/data/targets.yaml": `[tool.setuptools.package-data]` listed the
streams package's JSON files only (an outside audit)."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_data_file_of_a_package_is_in_its_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = config["package-data"]
    packages = config["packages"]["find"]["include"]
    missing = []
    for pattern in packages:
        top = pattern.rstrip("*")
        for path in sorted((ROOT / top).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".py",
                                                                                      ".pyc"):
                continue
            # the pattern is relative to the innermost package directory holding it
            package_dir = path.parent
            while not (package_dir / "__init__.py").exists():
                package_dir = package_dir.parent
            package = ".".join(package_dir.relative_to(ROOT).parts)
            rel = path.relative_to(package_dir).as_posix()
            if not any(fnmatch.fnmatch(rel, g) for g in globs.get(package, [])):
                missing.append(f"{package}: {rel}")
    assert not missing, f"data files the wheel leaves out: {missing}"
