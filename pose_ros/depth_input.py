"""Aligned depth for the pose node: depth message conversion, CameraInfo, approximate-time pairing.

- `depth_image_to_array`: sensor_msgs/Image `16UC1` (millimetres, 0 = no reading) or `32FC1`
  (metres, NaN / 0 = no reading) -> (array, unit) with the same checks as colour images.
- `camera_model`: sensor_msgs/CameraInfo -> K and the plumb_bob distortion, or a reason why not
  (zero focal length, another distortion model).
- `DepthPairer`: the recent depth images of one camera; `match(stamp)` returns the one nearest
  in time to a colour frame within a tolerance (the `message_filters` ApproximateTime idea for
  two streams; that package is not available here). Pure Python, thread-safe.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from pose_ros.image_conversion import ImageRejected

__all__ = [
    "DepthReading",
    "DepthPairer",
    "camera_model",
    "depth_image_to_array",
    "depth_to_image",
]

_DEPTH_LAYOUTS = {"16UC1": ("u2", "mm"), "32FC1": ("f4", "m")}
_DISTORTION_MODELS = frozenset({"plumb_bob", ""})


def depth_image_to_array(msg: Image) -> tuple[np.ndarray, str]:
    """(H, W) depth array (a copy) and its unit ("mm" or "m").

    Raises:
        ImageRejected: another encoding, or an inconsistent size, step or data length.
    """
    encoding = str(msg.encoding)
    if encoding not in _DEPTH_LAYOUTS:
        raise ImageRejected(f"depth encoding '{encoding[:32]}' (expected 16UC1 or 32FC1)")
    kind, unit = _DEPTH_LAYOUTS[encoding]
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    itemsize = int(kind[1])
    if width <= 0 or height <= 0:
        raise ImageRejected(f"empty depth image {width}x{height}")
    if step < width * itemsize or step % itemsize:
        raise ImageRejected(f"depth step {step} does not hold {width} x {itemsize} bytes")
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size != step * height:
        raise ImageRejected(f"depth data size {data.size} != step*height {step * height}")
    dtype = np.dtype((">" if msg.is_bigendian else "<") + kind)
    rows = np.ascontiguousarray(data.reshape(height, step)[:, : width * itemsize])
    return rows.view(dtype).reshape(height, width).astype(dtype.newbyteorder("=")), unit


def depth_to_image(depth: np.ndarray, encoding: str, header: Header | None = None) -> Image:
    """A depth Image: `16UC1` from uint16 millimetres or `32FC1` from float32 metres."""
    if encoding not in _DEPTH_LAYOUTS:
        raise ValueError(f"depth encoding must be 16UC1 or 32FC1, got {encoding!r}")
    kind, _ = _DEPTH_LAYOUTS[encoding]
    pixels = np.ascontiguousarray(depth, dtype=np.dtype("<" + kind))
    height, width = pixels.shape
    msg = Image(header=header or Header(), height=height, width=width, encoding=encoding)
    msg.is_bigendian = False
    msg.step = width * pixels.itemsize
    msg.data = pixels.tobytes()
    return msg


def camera_model(info: CameraInfo) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(K (3, 3), plumb_bob coefficients or None, problem) of a CameraInfo; `problem` is ''
    when it can be used, else the reason (K is then not to be used)."""
    k = np.asarray(info.k, np.float64).reshape(3, 3)
    if not np.isfinite(k).all() or k[0, 0] <= 0 or k[1, 1] <= 0:
        return k, None, "camera_info has a zero or invalid focal length"
    model = str(info.distortion_model)
    if model not in _DISTORTION_MODELS:
        return k, None, f"distortion model '{model}' is not supported (plumb_bob only)"
    d = np.asarray(info.d, np.float64)
    return k, (d if d.size and np.any(d != 0) else None), ""


@dataclass(frozen=True)
class DepthReading:
    """One depth image with what is needed to use it."""

    stamp: float
    depth: np.ndarray
    unit: str
    frame_id: str


class DepthPairer:
    """Recent depth images of one camera, paired to colour frames by time stamp.

    Args:
        tolerance_s: largest |depth stamp - colour stamp| of a pair.
        keep: depth images kept (the newest).
    """

    def __init__(self, tolerance_s: float = 0.05, keep: int = 8) -> None:
        self.tolerance_s = float(tolerance_s)
        self._readings: deque[DepthReading] = deque(maxlen=int(keep))
        self._lock = threading.Lock()
        self.info: CameraInfo | None = None

    def add(self, reading: DepthReading) -> None:
        with self._lock:
            self._readings.append(reading)

    def set_info(self, info: CameraInfo) -> None:
        with self._lock:
            self.info = info

    def match(self, stamp: float) -> DepthReading | None:
        """The depth image nearest in time to `stamp` within the tolerance, or None."""
        with self._lock:
            readings = list(self._readings)
        if not readings:
            return None
        best = min(readings, key=lambda r: abs(r.stamp - stamp))
        return best if abs(best.stamp - stamp) <= self.tolerance_s else None

    @property
    def received(self) -> int:
        with self._lock:
            return len(self._readings)
