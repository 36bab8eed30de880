"""Aligned depth for the pose node: depth message conversion, CameraInfo, approximate-time pairing.

- `depth_image_to_array`: sensor_msgs/Image `16UC1` (millimetres, 0 = no reading) or `32FC1`
  (metres, NaN / 0 = no reading) -> (array, unit) with the same checks as colour images.
- `camera_model`: sensor_msgs/CameraInfo -> K and the plumb_bob distortion, or a reason why not
  (zero focal length, K's last row not (0, 0, 1), non-finite distortion or a length OpenCV does
  not take, another distortion model); `camera_info_size_problem`: its size against the depth
  image's.
- `DepthPairer`: the recent depth images of one camera (the last `keep_s` seconds of stamps);
  `match(stamp, wait_s)` returns the one nearest in time to a colour frame within a tolerance,
  waiting a little for one that may still come (the `message_filters` ApproximateTime idea for
  two streams; that package is not available here). Pure Python, thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from pose_core.depth import check_camera_model
from pose_ros.image_conversion import ImageRejected

__all__ = [
    "DEPTH_ENCODINGS",
    "DepthReading",
    "DepthPairer",
    "camera_info_size_problem",
    "camera_model",
    "depth_image_to_array",
    "depth_to_image",
]

_DEPTH_LAYOUTS = {"16UC1": ("u2", "mm"), "32FC1": ("f4", "m")}
DEPTH_ENCODINGS = tuple(_DEPTH_LAYOUTS)  # REP 118: 16UC1 millimetres, 32FC1 metres
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
    try:  # the library's own checks: K's last row, finite distortion of a length OpenCV takes
        k, distortion = check_camera_model(k, np.asarray(info.d, np.float64))
    except ValueError as error:
        return k, None, f"camera_info: {error}"
    return k, distortion, ""


def camera_info_size_problem(info: CameraInfo, depth_shape: tuple[int, ...]) -> str:
    """'' when the CameraInfo describes an image of the depth image's (H, W), else the reason
    (K of another resolution would put every joint at the wrong angle)."""
    height, width = depth_shape[:2]
    if (int(info.width), int(info.height)) == (width, height):
        return ""
    return (f"depth/camera_info is for {info.width}x{info.height}, "
            f"the depth image is {width}x{height}")


@dataclass(frozen=True)
class DepthReading:
    """One depth image with what is needed to use it."""

    stamp: float
    depth: np.ndarray
    unit: str
    frame_id: str


class DepthPairer:
    """Recent depth images of one camera, paired to colour frames by time stamp.

    Depth images are kept by time, not by count: those whose stamp is within
    max(`keep_s`, 4 x tolerance) of the newest arrival's (so a 90 Hz camera keeps the image that
    matches a colour frame the worker takes late), and never more than `max_readings` (memory:
    100 images of 1280x720 16UC1 are 184 MB).

    Args:
        tolerance_s: largest |depth stamp - colour stamp| of a pair.
        keep_s: seconds of depth stamps kept (at least 4 x the tolerance).
        max_readings: most depth images kept (the newest).
    """

    def __init__(self, tolerance_s: float = 0.05, keep_s: float = 1.0,
                 max_readings: int = 100) -> None:
        if max_readings < 1:
            raise ValueError(f"max_readings must be >= 1, got {max_readings}")
        self.tolerance_s = float(tolerance_s)
        self.keep_s = float(keep_s)
        self._readings: deque[DepthReading] = deque(maxlen=int(max_readings))
        self._arrived = threading.Condition()
        self._received = 0
        self.info: CameraInfo | None = None

    def add(self, reading: DepthReading) -> None:
        """Keep a depth image and wake a `match` waiting for it."""
        with self._arrived:
            self._readings.append(reading)
            self._received += 1
            # relative to this arrival: a stamp jump back (a replayed bag) drops the old future
            horizon = max(self.keep_s, 4.0 * self.tolerance_s)
            if any(abs(r.stamp - reading.stamp) > horizon for r in self._readings):
                kept = [r for r in self._readings if abs(r.stamp - reading.stamp) <= horizon]
                self._readings.clear()
                self._readings.extend(kept)
            self._arrived.notify_all()

    def set_info(self, info: CameraInfo) -> None:
        with self._arrived:
            self.info = info

    def match(self, stamp: float, wait_s: float = 0.0) -> DepthReading | None:
        """The depth image nearest in time to `stamp` within the tolerance, or None.

        When none is within the tolerance yet but the newest depth is older than `stamp` (by
        less than the kept span: the depth stream is alive, its match may still be on the way),
        wait up to `wait_s` seconds for depth to arrive.
        """
        deadline = time.monotonic() + max(wait_s, 0.0)
        with self._arrived:
            while True:
                best = self._nearest(stamp)
                if best is not None:
                    return best
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._may_still_come(stamp):
                    return None
                self._arrived.wait(remaining)

    def _nearest(self, stamp: float) -> DepthReading | None:
        if not self._readings:
            return None
        best = min(self._readings, key=lambda r: abs(r.stamp - stamp))
        return best if abs(best.stamp - stamp) <= self.tolerance_s else None

    def _may_still_come(self, stamp: float) -> bool:
        if not self._readings:
            return False  # no depth at all: not worth holding the worker for
        newest = max(r.stamp for r in self._readings)
        horizon = max(self.keep_s, 4.0 * self.tolerance_s)
        return stamp - horizon <= newest < stamp

    @property
    def received(self) -> int:
        """Depth images added since the start (0: none ever arrived)."""
        with self._arrived:
            return self._received

    @property
    def kept(self) -> int:
        """Depth images held now."""
        with self._arrived:
            return len(self._readings)
