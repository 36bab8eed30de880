"""pose_core must never import ROS (rclpy, *_msgs, launch, cv_bridge) nor torchvision."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pose_core

FORBIDDEN_PREFIXES = ("rclpy", "rosidl", "launch", "launch_ros", "cv_bridge", "torchvision",
                      "pose_ros")
FORBIDDEN_SUFFIXES = ("_msgs",)


def _forbidden(module: str) -> bool:
    top = module.split(".")[0]
    return top in FORBIDDEN_PREFIXES or top.endswith(FORBIDDEN_SUFFIXES)


def test_pose_core_sources_import_no_ros_module() -> None:
    package_dir = Path(pose_core.__file__).parent
    offenders = []
    for path in sorted(package_dir.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {name}" for name in names if _forbidden(name)]
    assert offenders == []


def test_pose_core_imports_with_ros_blocked() -> None:
    """Import every pose_core module in a fresh interpreter where ROS imports raise."""
    script = f"""
import importlib, pkgutil, sys
FORBIDDEN = {FORBIDDEN_PREFIXES!r}
class Block:
    def find_spec(self, name, path=None, target=None):
        top = name.split('.')[0]
        if top in FORBIDDEN or top.endswith('_msgs'):
            raise ImportError('blocked ROS import: ' + name)
        return None
sys.meta_path.insert(0, Block())
import pose_core
for info in pkgutil.walk_packages(pose_core.__path__, 'pose_core.'):
    if info.name.endswith('__main__'):
        continue
    importlib.import_module(info.name)
for name in pose_core.__all__:
    getattr(pose_core, name)
loaded = sorted(m for m in sys.modules if m.split('.')[0] in FORBIDDEN or m.split('.')[0].endswith('_msgs'))
assert not loaded, loaded
print('ok', len(sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok")
