#!/usr/bin/env bash
# Set-up from nothing (Debian 12, Python 3.11, no ROS, no GPU). Idempotent: a second run only
# checks and rebuilds what changed.
#   1. checks the machine (Python 3.11, gcc, g++, cmake, make)
#   2. creates .venv/ and installs the pinned packages of requirements.txt (torch==2.13.0 CPU,
#      OpenCV 4.11.0.86, ROS 2 kilted wheels, colcon, ...), xtcocotools built from source
#   3. fixes the two include-path quirks of the ROS 2 message wheels (symbolic links)
#   4. installs this repository editable (pip install -e .)
#   5. builds the messages with colcon into build/ and install/
set -eo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
say() { printf '[setup] %s\n' "$*"; }
die() { printf 'setup.sh: %s\n' "$*" >&2; exit 1; }

# 1. the machine
PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PYTHON="$(command -v "$candidate")"; break; fi
  done
fi
[ -n "$PYTHON" ] || die "Python 3.11 is required but no python3 was found on PATH"
PYVER="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[ "$PYVER" = "3.11" ] || die "Python 3.11 is required (the ROS 2 wheels are cp311), found $PYVER at $PYTHON"
for tool in gcc g++ cmake make; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing; install it (Debian: apt-get install build-essential cmake)"
done
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || die "Python's venv/ensurepip module is missing (Debian: apt-get install python3.11-venv)"
say "machine ok: Python $PYVER ($PYTHON), gcc, g++, cmake, make"

# 2. virtual environment and pinned packages
if [ ! -x .venv/bin/python ]; then
  say "creating .venv/"
  "$PYTHON" -m venv .venv
fi
VPY="$ROOT/.venv/bin/python"
STAMP=.venv/.requirements.sha256
WANT="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  say "installing pinned packages from requirements.txt (torch CPU, OpenCV, ROS 2 wheels, colcon; a few minutes the first time)"
  "$VPY" -m pip install --disable-pip-version-check -q --upgrade pip
  grep -v '^xtcocotools==' requirements.txt > .venv/requirements-binary.txt
  "$VPY" -m pip install --disable-pip-version-check -q -r .venv/requirements-binary.txt
  say "building xtcocotools from source (its wheel is built against numpy 1)"
  "$VPY" -m pip install --disable-pip-version-check -q --no-build-isolation --no-binary xtcocotools \
    "$(grep '^xtcocotools==' requirements.txt)"
  echo "$WANT" > "$STAMP"
else
  say "pinned packages already installed (requirements.txt unchanged)"
fi

# 3. the message wheels' exported CMake targets name include folders of their build machine
PY_INCLUDE="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
NP_INCLUDE="$("$VPY" -c 'import numpy; print(numpy.get_include())')"
link_path() {  # link_path TARGET LINK: create or repoint the link (a real folder is left alone)
  if [ -L "$2" ] && [ "$(readlink "$2")" = "$1" ]; then return 0; fi
  if [ -e "$2" ] && [ ! -L "$2" ]; then return 0; fi
  mkdir -p "$(dirname "$2")" 2>/dev/null && ln -sfn "$1" "$2" 2>/dev/null \
    || die "cannot create $2 -> $1 (needs root); create that symbolic link and run again"
  say "linked $2 -> $1"
}
link_path "$PY_INCLUDE" /opt/python/cp311-cp311/include/python3.11
link_path "$NP_INCLUDE" /opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include

# 4. this repository, editable
if ! "$VPY" -c 'import importlib.metadata as m; m.version("pose_ros")' >/dev/null 2>&1; then
  say "installing this repository editable (pip install -e .)"
  "$VPY" -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
else
  say "repository already installed editable"
fi

# 5. messages and install space (colcon is incremental: a no-change rebuild takes seconds)
mkdir -p log
say "building the ROS 2 package with colcon (messages into install/)"
(
  export VIRTUAL_ENV="$ROOT/.venv" PATH="$ROOT/.venv/bin:$PATH"
  export CMAKE_PREFIX_PATH="$VIRTUAL_ENV" AMENT_PREFIX_PATH="$VIRTUAL_ENV"
  "$ROOT/.venv/bin/colcon" --log-base log build --base-paths "$ROOT" --build-base build \
    --install-base install \
    --cmake-args -DPython3_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF \
      -DPython3_NumPy_INCLUDE_DIR=/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include > log/colcon-build.txt 2>&1 \
    || { tail -n 30 log/colcon-build.txt >&2; die "colcon build failed (full log: log/colcon-build.txt)"; }
)
say "done: run commands through ./env.sh (e.g. ./env.sh python -m pytest test)"
