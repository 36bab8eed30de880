"""The built-in default model: a small HigherHRNet trained on the synthetic world.

Its weights ship as package data (`pose_core/weights/<DEFAULT_MODEL>.pt`), found through
importlib.resources so an installed package works without the repository. How the file was made
(command, data, AP): docs/training_synthetic.md.
"""

from __future__ import annotations

import sys
import warnings
from importlib import resources
from pathlib import Path

__all__ = [
    "DEFAULT_MODEL",
    "SYNTHETIC_ONLY_NOTICE",
    "SyntheticModelWarning",
    "default_checkpoint_path",
    "warn_synthetic_only",
]

DEFAULT_MODEL = "higherhrnet_lite_w16_256_coco"

# Self-contained: an installed package has no docs folder to point to.
SYNTHETIC_ONLY_NOTICE = (
    f"the shipped model ({DEFAULT_MODEL}) was trained on synthetic people only: on real "
    "photographs it misses people and draws false skeletons. For real images use an official "
    "checkpoint, e.g. the file pose_higher_hrnet_w32_512.pth (HigherHRNet-W32, COCO) from the "
    "model zoo of the official HigherHRNet repository "
    "(github.com/HRNet/HigherHRNet-Human-Pose-Estimation, README, 'model zoo' links): "
    "PoseEstimator('higherhrnet_w32_512_coco', checkpoint='pose_higher_hrnet_w32_512.pth') or "
    "pose-infer --model higherhrnet_w32_512_coco --checkpoint pose_higher_hrnet_w32_512.pth"
)

# The modules between a user's call (PoseEstimator(...), build_backend(...), a CLI's main) and
# the warning: the warning names the first line outside them, i.e. the user's own call.
_INTERNAL_MODULES = frozenset({
    __name__, "pose_core.inference.backend_factory", "pose_core.inference.estimator",
})


class SyntheticModelWarning(UserWarning):
    """The shipped synthetic-world model is in use (said once per process)."""


_warned = False


def warn_synthetic_only() -> None:
    """Say once per process that the shipped weights know only the synthetic world."""
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(SYNTHETIC_ONLY_NOTICE, SyntheticModelWarning,
                      stacklevel=_stacklevel_outside(_INTERNAL_MODULES))


def _stacklevel_outside(modules: frozenset[str]) -> int:
    """`warnings.warn`'s stacklevel, called from the caller of this function, that names the
    innermost frame whose module is not in `modules` (the depth differs from path to path)."""
    frame, level = sys._getframe(2), 2  # 1: the caller of warnings.warn
    while frame is not None and frame.f_globals.get("__name__") in modules:
        frame, level = frame.f_back, level + 1
    return level


def default_checkpoint_path() -> Path:
    """Path of the shipped checkpoint of `DEFAULT_MODEL`.

    Raises:
        FileNotFoundError: the package was installed without its weights.
    """
    resource = resources.files("pose_core").joinpath("weights", f"{DEFAULT_MODEL}.pt")
    path = Path(str(resource))
    if not path.is_file():
        raise FileNotFoundError(
            f"the shipped weights of {DEFAULT_MODEL} are missing ({path}); reinstall pose_core "
            "with its package data or pass an explicit checkpoint"
        )
    return path
