#!/usr/bin/env bash
# Run a command with the project's virtual environment and its built ROS 2 workspace:
#   ./env.sh python -c "from pose_ros.msg import PersonArray"
# Set-up (./setup.sh) must have run once.
set -e
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ ! -x "$ROOT/.venv/bin/python" ] || [ ! -f "$ROOT/install/setup.sh" ]; then
  echo "env.sh: the environment is not set up; run ./setup.sh first" >&2
  exit 2
fi
export VIRTUAL_ENV="$ROOT/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
# setup.sh of the colcon install space adds the generated pose_ros.msg to PYTHONPATH,
# AMENT_PREFIX_PATH and LD_LIBRARY_PATH. Its scripts read unset variables, so no `set -u` here.
COLCON_CURRENT_PREFIX="$ROOT/install" . "$ROOT/install/setup.sh"
# The source tree comes first so edits take effect without a rebuild; pose_ros/__init__.py merges
# the generated pose_ros.msg from the install space (pkgutil.extend_path).
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
exec "$@"
