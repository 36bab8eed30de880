"""The newest-frame buffer and its worker: drop-oldest, counts, no backlog, survives errors."""

from __future__ import annotations

import threading
import time

import pytest

from pose_ros.frame_buffer import BufferCounts, FrameWorker, LatestFrameBuffer


def test_put_replaces_the_waiting_frame_and_counts_it() -> None:
    buffer: LatestFrameBuffer[int] = LatestFrameBuffer()
    assert buffer.put(1) is False
    assert buffer.put(2) is True
    assert buffer.put(3) is True
    assert buffer.get(timeout=0) == 3
    assert buffer.get(timeout=0.01) is None
    counts = buffer.counts()
    assert (counts.received, counts.dropped, counts.taken) == (3, 2, 1)


def test_clear_and_close() -> None:
    buffer: LatestFrameBuffer[str] = LatestFrameBuffer()
    buffer.put("a")
    assert buffer.clear() is True and not buffer.pending
    assert buffer.counts().dropped == 1
    waiter_result: list[object] = []
    waiter = threading.Thread(target=lambda: waiter_result.append(buffer.get()))
    waiter.start()
    time.sleep(0.05)
    buffer.close()
    waiter.join(2.0)
    assert waiter_result == [None]


def test_worker_always_gets_the_newest_frame_and_never_builds_a_backlog() -> None:
    buffer: LatestFrameBuffer[int] = LatestFrameBuffer()
    processed: list[int] = []

    def slow_handler(item: int) -> None:
        time.sleep(0.02)
        processed.append(item)

    worker = FrameWorker(buffer, slow_handler)
    worker.start()
    for i in range(200):  # ~10x faster than the handler
        buffer.put(i)
        time.sleep(0.002)
    deadline = time.monotonic() + 2.0
    while buffer.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert worker.stop()
    counts = buffer.counts()
    assert processed[-1] == 199  # the newest frame is processed
    assert processed == sorted(processed)
    assert counts.received == 200
    assert counts.taken == len(processed)
    assert counts.dropped + counts.taken == counts.received
    assert counts.dropped > 100


def test_worker_survives_handler_errors() -> None:
    buffer: LatestFrameBuffer[int] = LatestFrameBuffer()
    seen: list[int] = []
    errors: list[BaseException] = []

    def handler(item: int) -> None:
        if item % 2:
            raise RuntimeError(f"bad {item}")
        seen.append(item)

    worker = FrameWorker(buffer, handler, on_error=errors.append)
    worker.start()
    for i in range(6):
        buffer.put(i)
        deadline = time.monotonic() + 2.0
        while buffer.pending and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.02)
    assert worker.stop()
    assert seen == [0, 2, 4] and worker.errors == 3 and len(errors) == 3
    worker.start()  # restartable
    buffer.put(8)
    deadline = time.monotonic() + 2.0
    while 8 not in seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.stop() and seen[-1] == 8


def test_stop_that_times_out_keeps_the_thread_until_it_ends() -> None:
    """A timed-out stop leaves the frame running; a later stop(None) waits for it to end."""
    release = threading.Event()
    buffer: LatestFrameBuffer[int] = LatestFrameBuffer()
    worker = FrameWorker(buffer, lambda item: release.wait(10.0))
    worker.start()
    buffer.put(1)
    deadline = time.monotonic() + 5.0
    while buffer.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not worker.stop(timeout=0.05)
    assert worker.running
    release.set()
    assert worker.stop(timeout=None)
    assert not worker.running


def test_keyed_frames_hand_over_every_ready_camera_at_once_and_count_per_camera() -> None:
    from pose_ros.frame_buffer import KeyedLatestFrames

    frames: KeyedLatestFrames[int] = KeyedLatestFrames(["a", "b", "c"])
    assert frames.get(timeout=0.01) is None
    frames.put("b", 1)
    frames.put("a", 2)
    assert frames.put("b", 3)  # replaces b's waiting frame: dropped
    assert frames.get(timeout=0.1) == {"a": 2, "b": 3}  # key order, newest of each
    assert not frames.pending
    frames.put("c", 4)
    assert frames.clear() and not frames.pending
    assert frames.counts("b") == BufferCounts(received=2, dropped=1, taken=1)
    assert frames.counts("c").dropped == 1
    assert frames.counts() == BufferCounts(received=4, dropped=2, taken=2)
    worker_got: list[dict[str, int]] = []
    worker = FrameWorker(frames, worker_got.append)
    worker.start()
    frames.put("c", 5)
    deadline = time.monotonic() + 5
    while not worker_got and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.stop(timeout=5.0)
    assert worker_got == [{"c": 5}]
    with pytest.raises(ValueError, match="distinct"):
        KeyedLatestFrames(["a", "a"])
