"""setup.sh stops with one clear line on a machine that cannot build the project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _bin_dir_with(tmp_path: Path, tools: list[str]) -> Path:
    """A PATH folder holding only `tools` (links to the real ones)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        real = shutil.which(tool)
        assert real, tool
        (bin_dir / tool).symlink_to(real)
    (bin_dir / "python3.11").symlink_to(sys.executable)
    return bin_dir


def _run_setup(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/bash", str(REPO_ROOT / "setup.sh")], env=env,
                          capture_output=True, text=True, timeout=60)


def test_missing_compiler_is_named_in_one_line(tmp_path: Path) -> None:
    bin_dir = _bin_dir_with(tmp_path, ["dirname", "cmake", "make"])  # no gcc, no g++
    result = _run_setup({"PATH": str(bin_dir), "HOME": str(tmp_path)})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "gcc is missing" in lines[0]


def test_missing_cmake_is_named(tmp_path: Path) -> None:
    bin_dir = _bin_dir_with(tmp_path, ["dirname", "gcc", "g++", "make"])
    result = _run_setup({"PATH": str(bin_dir), "HOME": str(tmp_path)})
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "setup.sh: cmake is missing; install it (Debian: apt-get install build-essential cmake)"
    ]


def test_wrong_python_version_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "python3.12"
    fake.write_text("#!/bin/sh\necho 3.12\n")
    fake.chmod(0o755)
    env = dict(os.environ, PYTHON=str(fake))
    result = _run_setup(env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Python 3.11 is required" in lines[0] and "3.12" in lines[0]
    assert not (tmp_path / ".venv").exists()
