"""Newest-frame-only hand-off between a subscription callback and one worker thread.

`LatestFrameBuffer` is a single slot: `put` replaces a frame that is still waiting (drop-oldest)
and counts it as dropped, so the worker always processes the newest frame and no backlog can
build up, whatever the input rate. `FrameWorker` runs a handler on each frame taken from the
buffer in its own thread. Pure Python (threading only), no ROS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["LatestFrameBuffer", "FrameWorker", "BufferCounts"]

T = TypeVar("T")


@dataclass(frozen=True)
class BufferCounts:
    """Snapshot of a buffer's counters.

    Attributes:
        received: frames put into the buffer.
        dropped: frames replaced before the worker took them (never processed).
        taken: frames handed to the worker.
    """

    received: int
    dropped: int
    taken: int


class LatestFrameBuffer(Generic[T]):
    """A single-slot, drop-oldest buffer (thread-safe)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: T | None = None
        self._has_item = False
        self._closed = False
        self._received = 0
        self._dropped = 0
        self._taken = 0

    def put(self, item: T) -> bool:
        """Store `item` as the newest frame.

        Returns:
            True when a waiting frame was replaced (and counted as dropped).
        """
        with self._condition:
            replaced = self._has_item
            if replaced:
                self._dropped += 1
            self._item, self._has_item = item, True
            self._received += 1
            self._condition.notify()
            return replaced

    def get(self, timeout: float | None = None) -> T | None:
        """Take the newest frame, waiting up to `timeout` seconds (None: until one or close).

        Returns:
            The frame, or None on timeout or after `close()`.
        """
        with self._condition:
            if not self._condition.wait_for(lambda: self._has_item or self._closed, timeout):
                return None
            if not self._has_item:
                return None
            item, self._item, self._has_item = self._item, None, False
            self._taken += 1
            return item

    def clear(self) -> bool:
        """Discard a waiting frame (counted as dropped). Returns True when there was one."""
        with self._condition:
            had = self._has_item
            if had:
                self._dropped += 1
            self._item, self._has_item = None, False
            return had

    def close(self) -> None:
        """Wake every waiting `get` (they return None); later puts are still accepted."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def reopen(self) -> None:
        """Undo `close()` (for a worker that is started again)."""
        with self._condition:
            self._closed = False

    @property
    def pending(self) -> bool:
        with self._condition:
            return self._has_item

    def counts(self) -> BufferCounts:
        with self._condition:
            return BufferCounts(self._received, self._dropped, self._taken)


class FrameWorker(Generic[T]):
    """One thread that runs `handler` on each newest frame of a `LatestFrameBuffer`.

    Args:
        buffer: where frames come from.
        handler: called with each frame in the worker thread.
        on_error: called with the exception when `handler` raises; the worker keeps running.
        name: thread name.
    """

    def __init__(
        self,
        buffer: LatestFrameBuffer[T],
        handler: Callable[[T], None],
        on_error: Callable[[BaseException], None] | None = None,
        name: str = "frame_worker",
    ) -> None:
        self._buffer = buffer
        self._handler = handler
        self._on_error = on_error
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread (no-op when it already runs)."""
        if self.running:
            return
        self._stop.clear()
        self._buffer.reopen()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Ask the thread to finish its current frame and exit.

        Args:
            timeout: seconds to wait; None waits until the frame in progress is done.

        Returns:
            True when the thread has ended. On False the thread is still finishing its frame;
            call `stop` again to keep waiting (it is remembered until it has ended).
        """
        self._stop.set()
        self._buffer.close()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._thread = None
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._buffer.get(timeout=0.5)
            if item is None or self._stop.is_set():
                continue
            try:
                self._handler(item)
            except Exception as error:  # noqa: BLE001 - the worker must survive any frame
                self.errors += 1
                if self._on_error is not None:
                    self._on_error(error)
