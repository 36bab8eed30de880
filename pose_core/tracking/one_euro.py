"""The One-Euro filter (Casiez, Roussel and Vogel, "1 Euro Filter: A Simple Speed-based Low-pass
Filter for Noisy Input in Interactive Systems", CHI 2012), for arrays of values.

A low-pass filter whose cut-off rises with the speed of the signal: slow motion is smoothed
strongly (jitter goes), fast motion passes with little lag. For each value:

    alpha(fc, dt) = 1 / (1 + 1 / (2 pi fc dt))
    dx  = (x - x_prev) / dt,       dx_hat = alpha(d_cutoff, dt) dx + (1 - alpha) dx_hat_prev
    fc  = min_cutoff + beta |dx_hat|,  x_hat = alpha(fc, dt) x + (1 - alpha) x_hat_prev

Values can be masked per call (a joint not found): masked values keep their state and come
back unfiltered; a value that was masked on the previous call starts again from its raw value.

`shared_speed=True` (for the keypoints of one person): the speed that sets the cut-off is the
mean over the rows (joints) of each column's (x, y) filtered speed, i.e. the person's motion.
A single keypoint's speed estimate is dominated by the detector's frame-to-frame noise, which
keeps the cut-off high and the jitter in; the mean over 17 joints averages that noise out while
a walking person still opens the filter.
Shapes: any fixed shape (e.g. (J, 2) pixels); time in seconds.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["OneEuroFilter"]


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter over an array of values.

    Args:
        min_cutoff: cut-off frequency (Hz) at rest; lower = smoother.
        beta: speed coefficient; higher = less lag in fast motion.
        d_cutoff: cut-off frequency (Hz) of the speed estimate.
    """

    def __init__(
        self,
        min_cutoff: float = 1.0,
        beta: float = 0.0,
        d_cutoff: float = 1.0,
        shared_speed: bool = False,
    ) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("One-Euro cut-offs must be positive and beta non-negative")
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.shared_speed = bool(shared_speed)
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None
        self._active: np.ndarray | None = None
        self._time = 0.0

    def __call__(self, values: np.ndarray, time: float, mask: np.ndarray | None = None) -> np.ndarray:
        """Filtered `values` at `time` (seconds); `mask` (broadcastable, bool): which values
        are observations (the others are returned as given and keep their state)."""
        x = np.asarray(values, np.float64)
        valid = np.ones(x.shape, bool) if mask is None else np.broadcast_to(mask, x.shape)
        if self._value is None or self._value.shape != x.shape:
            self._value, self._speed = x.copy(), np.zeros_like(x)
            self._active, self._time = valid.copy(), float(time)
            return x.copy()
        dt = float(time) - self._time
        restart = valid & ~self._active
        if dt > 0:
            speed = (x - self._value) / dt
            a_d = _alpha(self.d_cutoff, dt)
            speed_hat = a_d * speed + (1.0 - a_d) * self._speed
            update = valid & ~restart
            a = _alpha(self.min_cutoff + self.beta * self._cutoff_speed(speed_hat, update), dt)
            smoothed = a * x + (1.0 - a) * self._value
            self._value = np.where(update, smoothed, self._value)
            self._speed = np.where(update, speed_hat, self._speed)
            self._time = float(time)
        self._value = np.where(restart, x, self._value)
        self._speed = np.where(restart, 0.0, self._speed)
        self._active = valid.copy()
        return np.where(valid, self._value, x)

    def _cutoff_speed(self, speed_hat: np.ndarray, update: np.ndarray) -> np.ndarray:
        """|speed| per value, or with `shared_speed` the |mean speed| of each column."""
        if not self.shared_speed or speed_hat.ndim < 2:
            return np.abs(speed_hat)
        count = np.maximum(update.sum(axis=0, keepdims=True), 1)
        return np.abs(np.where(update, speed_hat, 0.0).sum(axis=0, keepdims=True) / count)
