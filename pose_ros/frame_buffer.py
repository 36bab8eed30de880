"""Newest-frame-only hand-off between subscription callbacks and one worker thread.

`LatestFrameBuffer` is a single slot: `put` replaces a frame that is still waiting (drop-oldest)
and counts it as dropped, so the worker always processes the newest frame and no backlog can
build up, whatever the input rate. `KeyedLatestFrames` is one such slot per key (camera): `get`
hands over the newest frame of every camera that has one, all at once, so cameras whose frames
are ready together are processed together (one batched network call) and no camera waits
behind another. `FrameWorker` runs a handler on each item taken from a buffer in its own
thread. Pure Python (threading only), no ROS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pose_core.inference.thread_policy import pin_current_thread

__all__ = ["LatestFrameBuffer", "KeyedLatestFrames", "FrameWorker", "BufferCounts"]

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


class KeyedLatestFrames(Generic[T]):
    """One drop-oldest slot per key (thread-safe); `get` takes every waiting frame at once.

    Args:
        keys: the keys (cameras), in the order `get` returns them.
    """

    def __init__(self, keys: list[str]) -> None:
        if not keys or len(set(keys)) != len(keys):
            raise ValueError(f"KeyedLatestFrames needs distinct keys, got {keys}")
        self.keys = list(keys)
        self._condition = threading.Condition()
        self._items: dict[str, T] = {}
        self._closed = False
        self._received = dict.fromkeys(self.keys, 0)
        self._dropped = dict.fromkeys(self.keys, 0)
        self._taken = dict.fromkeys(self.keys, 0)

    def put(self, key: str, item: T) -> bool:
        """Store `item` as the newest frame of `key`; True when a waiting one was replaced."""
        with self._condition:
            replaced = key in self._items
            if replaced:
                self._dropped[key] += 1
            self._items[key] = item
            self._received[key] += 1
            self._condition.notify()
            return replaced

    def get(self, timeout: float | None = None) -> dict[str, T] | None:
        """The newest frame of every key that has one (key order), waiting up to `timeout`
        seconds for the first; None on timeout or after `close()`."""
        with self._condition:
            if not self._condition.wait_for(lambda: bool(self._items) or self._closed, timeout):
                return None
            if not self._items:
                return None
            items = {key: self._items[key] for key in self.keys if key in self._items}
            self._items = {}
            for key in items:
                self._taken[key] += 1
            return items

    def clear(self) -> bool:
        """Discard every waiting frame (counted as dropped). True when there was one."""
        with self._condition:
            for key in self._items:
                self._dropped[key] += 1
            had = bool(self._items)
            self._items = {}
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
            return bool(self._items)

    def counts(self, key: str | None = None) -> BufferCounts:
        """The counters of one key, or their sums over every key (None)."""
        with self._condition:
            keys = self.keys if key is None else [key]
            return BufferCounts(
                sum(self._received[k] for k in keys),
                sum(self._dropped[k] for k in keys),
                sum(self._taken[k] for k in keys),
            )


class LatestFrameBuffer(Generic[T]):
    """A single-slot, drop-oldest buffer (thread-safe): `KeyedLatestFrames` with one key."""

    _KEY = "frame"

    def __init__(self) -> None:
        self._frames: KeyedLatestFrames[T] = KeyedLatestFrames([self._KEY])

    def put(self, item: T) -> bool:
        """Store `item` as the newest frame.

        Returns:
            True when a waiting frame was replaced (and counted as dropped).
        """
        return self._frames.put(self._KEY, item)

    def get(self, timeout: float | None = None) -> T | None:
        """Take the newest frame, waiting up to `timeout` seconds (None: until one or close).

        Returns:
            The frame, or None on timeout or after `close()`.
        """
        items = self._frames.get(timeout)
        return None if items is None else items[self._KEY]

    def clear(self) -> bool:
        """Discard a waiting frame (counted as dropped). Returns True when there was one."""
        return self._frames.clear()

    def close(self) -> None:
        """Wake every waiting `get` (they return None); later puts are still accepted."""
        self._frames.close()

    def reopen(self) -> None:
        """Undo `close()` (for a worker that is started again)."""
        self._frames.reopen()

    @property
    def pending(self) -> bool:
        return self._frames.pending

    def counts(self) -> BufferCounts:
        return self._frames.counts()


class FrameWorker(Generic[T]):
    """One thread that runs `handler` on each newest frame of a `LatestFrameBuffer`.

    Args:
        buffer: where frames come from.
        handler: called with each frame in the worker thread.
        on_error: called with the exception when `handler` raises; the worker keeps running.
        name: thread name.
        cpus: CPUs the thread pins itself to when it starts (empty: not pinned).
    """

    def __init__(
        self,
        buffer: LatestFrameBuffer[T] | KeyedLatestFrames[Any],
        handler: Callable[[T], None],
        on_error: Callable[[BaseException], None] | None = None,
        name: str = "frame_worker",
        cpus: tuple[int, ...] = (),
    ) -> None:
        self._buffer = buffer
        self.cpus = tuple(cpus)
        self.pinned = False
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
        if self.cpus:
            self.pinned = pin_current_thread(self.cpus)
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
