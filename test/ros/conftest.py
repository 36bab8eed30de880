"""Fixtures of the ROS tests: an isolated rclpy Context per test, the DDS profile, tiny models.

Each test gets its own `rclpy.Context` on its own DDS domain (derived from the process id and a
counter), so tests running in parallel on one machine never see each other's topics. The
recommended Fast DDS profile (`config/fastdds_shm.xml`, shared memory with a large segment) is
exported before any participant is created, as the README tells users with big images to do.
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import rclpy

REPO_ROOT = Path(__file__).resolve().parents[2]
FASTDDS_PROFILE = REPO_ROOT / "config" / "fastdds_shm.xml"
TINY_MODEL = "higherhrnet_lite_w16_256_coco"

_domains = itertools.count()
_DOMAIN_OFFSET = random.SystemRandom().randrange(230)


def _next_domain_id() -> int:
    """A domain id in [1, 230], random per process, so parallel pytest runs rarely meet."""
    return 1 + (_DOMAIN_OFFSET + next(_domains)) % 230


@pytest.fixture(scope="session", autouse=True)
def fastdds_profile() -> Iterator[Path]:
    """Export the recommended Fast DDS profile for every participant of this session."""
    saved = {key: os.environ.get(key) for key in ("FASTDDS_DEFAULT_PROFILES_FILE",)}
    os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(FASTDDS_PROFILE)
    yield FASTDDS_PROFILE
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def ros_context() -> Iterator[rclpy.Context]:
    """An initialised rclpy Context on a private domain, shut down after the test."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=_next_domain_id())
    try:
        yield context
    finally:
        if context.ok():
            rclpy.shutdown(context=context)


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of the tiny model with fixed random weights (accuracy is not asserted)."""
    import torch

    from pose_core.models import build_model

    torch.manual_seed(0)
    model = build_model(TINY_MODEL)
    path = tmp_path_factory.mktemp("weights") / f"{TINY_MODEL}_random.pt"
    torch.save({"format_version": 1, "model": model.state_dict()}, path)
    return path
