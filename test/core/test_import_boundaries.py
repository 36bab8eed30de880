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


# ---- inside pose_core: inference never depends on evaluation --------------------------------
# One direction only: `pose_core.evaluation` (pose-eval runs a model) may import
# `pose_core.inference`; `pose_core.inference` must not import `pose_core.evaluation` (shared
# pieces such as the COCO result records live in `pose_core.data`).


def _module_name(path: Path, package_dir: Path) -> str:
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module an import statement of `source` (anywhere, function bodies included)
    names, relative imports resolved against `module`; `from a import b` gives a and a.b."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                parent = ".".join(base + ([node.module] if node.module else []))
            else:
                parent = node.module or ""
            found.add(parent)
            found.update(f"{parent}.{alias.name}" for alias in node.names)
    return found


def _in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_imported_modules_sees_every_import_form() -> None:
    source = (
        "import pose_core.evaluation.cli\n"
        "from pose_core import evaluation\n"
        "def f():\n"
        "    from ..evaluation.coco_evaluator import KeypointEvaluator\n"
        "from . import estimator\n"
    )
    found = _imported_modules(source, "pose_core.inference.cli")
    assert {"pose_core.evaluation.cli", "pose_core.evaluation",
            "pose_core.evaluation.coco_evaluator", "pose_core.inference.estimator"} <= found
    package = _imported_modules("from .estimator import PoseEstimator\n", "pose_core.inference",
                                is_package=True)
    assert "pose_core.inference.estimator" in package


def test_inference_does_not_import_evaluation() -> None:
    package_dir = Path(pose_core.__file__).parent
    offenders = []
    for path in sorted((package_dir / "inference").rglob("*.py")):
        module = _module_name(path, package_dir)
        imported = _imported_modules(path.read_text(), module, path.name == "__init__.py")
        offenders += [f"{module}: {name}" for name in sorted(imported)
                      if _in_package(name, "pose_core.evaluation")]
    assert offenders == [], "pose_core.inference must not import pose_core.evaluation"
