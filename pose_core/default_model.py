"""The built-in default model: a small HigherHRNet trained on the synthetic world.

Its weights ship as package data (`pose_core/weights/<DEFAULT_MODEL>.pt`), found through
importlib.resources so an installed package works without the repository. How the file was made
(command, data, AP): docs/training_synthetic.md.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["DEFAULT_MODEL", "default_checkpoint_path"]

DEFAULT_MODEL = "higherhrnet_lite_w16_256_coco"


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
