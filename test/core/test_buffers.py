"""BufferPool: lending per frame, reuse between frames, nesting, limits; and the maps built
from a pool are the same numbers as freshly allocated ones."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from pose_core.inference.buffers import BufferPool
from pose_core.inference.test_time_aug import aggregate_scales, merge_stage_outputs
from pose_core.keypoint_specs import COCO_17


def test_buffers_are_distinct_in_a_frame_and_reused_in_the_next() -> None:
    pool = BufferPool()
    with pool.frame():
        a = pool.empty((4, 5), torch.float32, "cpu")
        b = pool.empty((4, 5), torch.float32, "cpu")
        assert a.data_ptr() != b.data_ptr()
        pointers = {a.data_ptr(), b.data_ptr()}
    assert pool.allocations == 2 and pool.free_bytes == 2 * 4 * 5 * 4
    with pool.frame():
        c = pool.empty((4, 5), torch.float32, "cpu")
        d = pool.empty((4, 5), torch.float32, "cpu")
        assert {c.data_ptr(), d.data_ptr()} == pointers
        # another shape, dtype or memory format is another buffer
        e = pool.empty((5, 4), torch.float32, "cpu")
        f = pool.empty((4, 5), torch.float64, "cpu")
        g = pool.empty((1, 2, 3, 4), torch.float32, "cpu", torch.channels_last)
        assert g.is_contiguous(memory_format=torch.channels_last)
        assert len({c.data_ptr(), d.data_ptr(), e.data_ptr(), f.data_ptr(), g.data_ptr()}) == 5
    assert pool.allocations == 5


def test_nested_frames_return_only_their_own_buffers() -> None:
    pool = BufferPool()
    with pool.frame():
        outer = pool.empty((8,), torch.float32, "cpu")
        with pool.frame():
            inner = pool.empty((8,), torch.float32, "cpu")
            assert inner.data_ptr() != outer.data_ptr()
        # the inner buffer is free again, the outer one is still lent
        again = pool.empty((8,), torch.float32, "cpu")
        assert again.data_ptr() == inner.data_ptr()
        third = pool.empty((8,), torch.float32, "cpu")
        assert third.data_ptr() not in (outer.data_ptr(), inner.data_ptr())
    assert pool.allocations == 3


def test_empty_outside_a_frame_raises_and_an_error_still_returns_buffers() -> None:
    pool = BufferPool()
    with pytest.raises(RuntimeError, match="frame"):
        pool.empty((2,), torch.float32, "cpu")
    with pytest.raises(KeyError):
        with pool.frame():
            pool.empty((2,), torch.float32, "cpu")
            raise KeyError("boom")
    assert pool.free_bytes == 8
    with pytest.raises(ValueError, match="max_free_bytes"):
        BufferPool(max_free_bytes=-1)


def test_free_bytes_are_capped_least_recently_returned_first() -> None:
    pool = BufferPool(max_free_bytes=100)
    for size in (10, 11, 12):  # 40, 44, 48 bytes: the first is dropped when the third returns
        with pool.frame():
            pool.empty((size,), torch.float32, "cpu")
    assert pool.free_bytes == 44 + 48
    with pool.frame():
        pool.empty((10,), torch.float32, "cpu")  # was dropped: a new allocation
        pool.empty((12,), torch.float32, "cpu")  # still there: reused
    assert pool.allocations == 4


def _raw_pass(
    seed: int, size_hw: tuple[int, int]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    h, w = size_hw
    outs = [torch.rand(1, 34, h // 4, w // 4, generator=gen),
            torch.rand(1, 17, h // 2, w // 2, generator=gen)]
    return outs, [torch.rand(o.shape, generator=gen) for o in outs]


@pytest.mark.parametrize("flip", [True, False])
def test_pooled_maps_equal_fresh_ones_also_for_same_size_passes(flip: bool) -> None:
    # scales 1.0 and 1.01 give the same input size after rounding: two passes of one image
    # with equal shapes must not share buffers in a frame
    passes = [(1.0, *_raw_pass(1, (64, 96))), (1.01, *_raw_pass(2, (64, 96))),
              (0.5, *_raw_pass(3, (32, 48)))]
    flip_index = list(COCO_17.flip_index)

    def run(pool: BufferPool | None):
        maps = [merge_stage_outputs(o, f if flip else None, 17, flip_index, s, pool=pool)
                for s, o, f in passes]
        heat, sampler = aggregate_scales(maps, (96, 64), pool=pool)
        dense = torch.stack([sampler.dense(j) for j in range(17)])
        return [m.heatmaps.clone() for m in maps], heat.clone(), dense

    fresh = run(None)
    pool = BufferPool()
    for _ in range(2):  # the second round runs on reused buffers
        with pool.frame():
            pooled = run(pool)
        for a, b in zip(fresh[0], pooled[0]):
            assert torch.equal(a, b)
        assert torch.equal(fresh[1], pooled[1]) and torch.equal(fresh[2], pooled[2])
    allocations = pool.allocations
    with pool.frame():
        run(pool)
    assert pool.allocations == allocations > 0


def test_estimator_reuses_its_pool_and_threads_get_their_own() -> None:
    from pose_core.default_model import DEFAULT_MODEL
    from pose_core.inference.estimator import PoseEstimator

    estimator = PoseEstimator(DEFAULT_MODEL, input_size=128)
    rng = np.random.default_rng(5)
    image = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    first = estimator(image)
    assert len(first) >= 1  # the parser's low-score fragments: something to compare
    pool = estimator._pool()
    allocations = pool.allocations
    assert allocations > 0 and pool.free_bytes > 0
    for _ in range(2):
        again = estimator(image)
        np.testing.assert_array_equal(again.keypoints, first.keypoints)
        np.testing.assert_array_equal(again.scores, first.scores)
    assert pool.allocations == allocations
    seen: list[object] = []
    worker = threading.Thread(target=lambda: seen.append((estimator(image), estimator._pool())))
    worker.start()
    worker.join()
    poses, other_pool = seen[0]
    assert other_pool is not pool
    np.testing.assert_array_equal(poses.keypoints, first.keypoints)
