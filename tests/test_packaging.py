"""The wheel ships every module: pyproject maps folders onto the `mmsearch` namespace (package-dir)
and setuptools discovers the packages under each mapped folder, so a new subpackage cannot be left
out of the wheel by a hand-kept list.

The wheel is built with the PEP 517 hook of the locked environment's setuptools (what
`uv build --wheel --no-build-isolation` runs), from a copy of the sources, so the test needs no
network and leaves no build/ or *.egg-info in the checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("*.py", "*.pyi", "py.typed", "*.html", "*.js", "*.css")


def _package_dirs() -> dict[str, str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["setuptools"]["package-dir"]


def _build(tmp: Path, package_dirs: dict[str, str], extra: dict[str, str]) -> zipfile.ZipFile:
    """Builds the wheel from a copy of the mapped folders plus `extra` files (path -> text)."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in package_dirs.values():
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for path, text in extra.items():
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        (src / path).write_text(text)
    out = tmp / "dist"
    hook = "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    done = subprocess.run([sys.executable, "-c", hook, str(out)], cwd=src, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return zipfile.ZipFile(out / done.stdout.strip().splitlines()[-1])


def test_wheel_ships_every_module_under_each_mapped_folder(tmp_path: Path) -> None:
    package_dirs = _package_dirs()
    assert package_dirs == {
        "mmsearch.server": "server",
        "mmsearch.encoders": "encoders",
        "mmsearch.client": "clients/python/mmsearch_client",
        "mmsearch.protocol": "protocol",
        "mmsearch.v1": "clients/python/generated/mmsearch/v1",
    }
    # Subpackages nobody listed anywhere (one without __init__.py): discovery finds them.
    extra = {"server/newpkg/__init__.py": "", "server/newpkg/deep/mod.py": "X = 1\n"}
    wheel = _build(tmp_path, package_dirs, extra)
    names = set(wheel.namelist())
    expected = {"mmsearch/server/newpkg/__init__.py", "mmsearch/server/newpkg/deep/mod.py"}
    for package, folder in package_dirs.items():
        for pattern in SHIPPED:
            for f in (ROOT / folder).rglob(pattern):
                if "__pycache__" not in f.parts:
                    rel = f.relative_to(ROOT / folder).as_posix()
                    expected.add(f"{package.replace('.', '/')}/{rel}")
    assert len(expected) > 60  # server, encoders, client, bench, the generated stubs
    assert {
        "mmsearch/server/storage/edge.py",
        "mmsearch/client/bench/load.py",
        "mmsearch/v1/common_pb2.pyi",
        "mmsearch/protocol/vocab.py",
    } <= expected
    assert sorted(expected - names) == []
    # nothing else: no tests, scripts or benchmarks
    shipped = {n for n in names if ".dist-info/" not in n}
    assert sorted(shipped - expected) == []
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "mmsearch = mmsearch.client.cli:main" in wheel.read(entry_points).decode()
