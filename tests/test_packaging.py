"""What the wheel carries: every data file the packages read at run time. The Docker image
installs the wheel, not the source tree, and `packloop report officer` failed there with
"No such file … streams/data/targets.yaml": `[tool.setuptools.package-data]` listed the
streams package's JSON files only (an outside audit)."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _glob(pattern: str) -> re.Pattern[str]:
    """setuptools' package-data glob: `*` stays within one folder (fnmatch's crosses `/`,
    so `data/*.json` would have passed `data/sub/x.json`, which the wheel leaves out)."""
    out = "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c)
                  for c in pattern)
    return re.compile(out)


def test_every_data_file_of_a_package_is_in_its_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = config["package-data"]
    tops = [p.rstrip("*") for p in config["packages"]["find"]["include"]]
    # the files a clean checkout has (a developer's untracked scratch files are not shipped)
    tracked = subprocess.run(["git", "ls-files", *tops], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    assert tracked, "no tracked files found"
    missing = []
    for name in tracked:
        path = ROOT / name
        if path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
            continue
        # the pattern is relative to the innermost package directory holding the file
        package_dir = path.parent
        while not (package_dir / "__init__.py").exists():
            package_dir = package_dir.parent
        package = ".".join(package_dir.relative_to(ROOT).parts)
        rel = path.relative_to(package_dir).as_posix()
        if not any(_glob(g).fullmatch(rel) for g in globs.get(package, [])):
            missing.append(f"{package}: {rel}")
    assert not missing, f"data files the wheel leaves out: {missing}"
