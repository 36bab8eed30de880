"""sensor_msgs/Image and CompressedImage <-> numpy, without cv_bridge.

Every decoded image is returned as an (H, W, 3) uint8 array in BGR order, the colour order
`pose_core.PoseEstimator` expects. Coordinates are not touched: pixel (x, y) of the array is
pixel (x, y) of the message.

Rules of the conversion:
- `encoding` decides the layout (see `SUPPORTED_ENCODINGS`); depth and float images (`16UC1`,
  `32FC1`) are rejected with a reason, because they are not camera images a pose model can use.
- `step` (bytes per row) is honoured: rows may be padded, so the row stride is `step`, not
  `width * bytes_per_pixel`.
- `is_bigendian` is honoured for 16-bit encodings.
- `mono16` (and `rgb16` / `bgr16`) are scaled to 8 bits by dividing by 257 (65535 -> 255),
  rounded, like `cv2.convertScaleAbs(image, alpha=255 / 65535)`.
- Sizes are checked before anything is allocated (`max_pixels`); compressed images have their
  PNG / JPEG header read first, so an 8K "decompression bomb" is rejected without decoding it.

Every failure raises `ImageRejected` with a short `reason` string suitable for diagnostics.
"""

from __future__ import annotations

import array
import struct
from dataclasses import dataclass

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "SUPPORTED_ENCODINGS",
    "ImageRejected",
    "EncodingLayout",
    "image_to_bgr",
    "compressed_to_bgr",
    "bgr_to_image",
    "array_to_image",
    "bgr_to_compressed",
    "compressed_image_size",
]

# 4096 x 2304 (16:9 4K) = 9.4 Mpx; a 7680 x 4320 "8K" frame (33 Mpx) is rejected.
DEFAULT_MAX_PIXELS = 4096 * 2304


class ImageRejected(ValueError):
    """An image message that cannot be converted.

    Attributes:
        reason: short, stable, human-readable reason (used as the diagnostics key).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class EncodingLayout:
    """Memory layout of one raw encoding.

    Attributes:
        channels: values per pixel in the buffer (2 for packed YUV 4:2:2: one Y and one U/V).
        bytes_per_channel: 1 or 2.
        to_bgr: OpenCV colour conversion code to BGR, or None when already BGR.
    """

    channels: int
    bytes_per_channel: int
    to_bgr: int | None

    @property
    def bytes_per_pixel(self) -> int:
        return self.channels * self.bytes_per_channel


SUPPORTED_ENCODINGS: dict[str, EncodingLayout] = {
    "bgr8": EncodingLayout(3, 1, None),
    "8UC3": EncodingLayout(3, 1, None),
    "rgb8": EncodingLayout(3, 1, cv2.COLOR_RGB2BGR),
    "bgra8": EncodingLayout(4, 1, cv2.COLOR_BGRA2BGR),
    "8UC4": EncodingLayout(4, 1, cv2.COLOR_BGRA2BGR),
    "rgba8": EncodingLayout(4, 1, cv2.COLOR_RGBA2BGR),
    "mono8": EncodingLayout(1, 1, cv2.COLOR_GRAY2BGR),
    "8UC1": EncodingLayout(1, 1, cv2.COLOR_GRAY2BGR),
    "mono16": EncodingLayout(1, 2, cv2.COLOR_GRAY2BGR),
    "bgr16": EncodingLayout(3, 2, None),
    "rgb16": EncodingLayout(3, 2, cv2.COLOR_RGB2BGR),
    # ROS "yuv422" is UYVY byte order (U0 Y0 V0 Y1); "yuv422_yuy2" is YUYV (Y0 U0 Y1 V0).
    "yuv422": EncodingLayout(2, 1, cv2.COLOR_YUV2BGR_UYVY),
    "uyvy": EncodingLayout(2, 1, cv2.COLOR_YUV2BGR_UYVY),
    "yuv422_yuy2": EncodingLayout(2, 1, cv2.COLOR_YUV2BGR_YUYV),
    "yuyv": EncodingLayout(2, 1, cv2.COLOR_YUV2BGR_YUYV),
}

_DEPTH_ENCODINGS = frozenset({"16UC1", "16SC1", "32FC1", "32SC1", "64FC1"})


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageRejected("zero-size image")
    if width * height > max_pixels:
        raise ImageRejected(f"image too large ({width}x{height} > {max_pixels} px)")


def _to_8bit(image16: np.ndarray) -> np.ndarray:
    """Scale a uint16 array to uint8 (65535 -> 255), rounding to nearest."""
    return ((image16.astype(np.uint32) + 128) // 257).astype(np.uint8)


def image_to_bgr(msg: Image, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Convert a sensor_msgs/Image to an (H, W, 3) uint8 BGR array.

    Args:
        msg: the image message.
        max_pixels: width * height above which the image is rejected before any allocation.

    Returns:
        A new contiguous (H, W, 3) uint8 array in BGR order (never a view of `msg.data`).

    Raises:
        ImageRejected: unknown or depth encoding, zero or excessive size, inconsistent `step`
            or data length.
    """
    encoding = str(msg.encoding)
    layout = SUPPORTED_ENCODINGS.get(encoding)
    if layout is None:
        if encoding in _DEPTH_ENCODINGS:
            raise ImageRejected(f"depth/float encoding '{encoding}' is not a camera image")
        shown = encoding if len(encoding) <= 32 else encoding[:32] + "..."
        raise ImageRejected(f"unsupported encoding '{shown}'")
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    _check_size(width, height, max_pixels)
    row_bytes = width * layout.bytes_per_pixel
    if layout.channels == 2 and width % 2:
        raise ImageRejected(f"odd width {width} for packed YUV 4:2:2")
    if step < row_bytes:
        raise ImageRejected(f"step {step} < width*bytes_per_pixel {row_bytes}")
    if layout.bytes_per_channel == 2 and step % 2:
        raise ImageRejected(f"odd step {step} for a 16-bit encoding")
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size != step * height:
        raise ImageRejected(f"data size {data.size} != step*height {step * height}")

    rows = data.reshape(height, step)[:, :row_bytes]
    if layout.bytes_per_channel == 1:
        pixels = rows.reshape(height, width, layout.channels)
    else:
        dtype = np.dtype(">u2" if msg.is_bigendian else "<u2")
        # rows is a strided view; a contiguous copy is needed before re-viewing as uint16
        pixels16 = np.ascontiguousarray(rows).view(dtype).reshape(height, width, layout.channels)
        pixels = _to_8bit(pixels16)
    if layout.channels == 1:
        pixels = pixels[:, :, 0]
    if layout.to_bgr is None:
        return np.array(pixels, dtype=np.uint8, order="C", copy=True)
    return cv2.cvtColor(np.ascontiguousarray(pixels), layout.to_bgr)


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) >= 24 and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return None


_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        return None
    pos, end = 2, min(len(data), 1 << 20)  # frame header is always near the start
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker in _JPEG_SOF:
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return int(width), int(height)
        pos += 2 + length
    return None


def compressed_image_size(data: bytes) -> tuple[str, tuple[int, int] | None]:
    """Read (format, (width, height)) from a PNG or JPEG header without decoding.

    Returns:
        ("png" | "jpeg" | "unknown", size or None when the header does not give one).
    """
    size = _png_size(data)
    if size is not None:
        return "png", size
    if data[:2] == b"\xff\xd8":
        return "jpeg", _jpeg_size(data)
    return "unknown", None


def compressed_to_bgr(msg: CompressedImage, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (JPEG or PNG) to an (H, W, 3) uint8 BGR array.

    The header of the stream is read first, so oversized images are rejected before decoding.

    Raises:
        ImageRejected: empty data, unknown format, oversized or undecodable stream.
    """
    data = bytes(msg.data)
    if not data:
        raise ImageRejected("empty compressed data")
    kind, size = compressed_image_size(data)
    if kind == "unknown":
        raise ImageRejected(f"unknown compressed format '{str(msg.format)[:32]}'")
    if size is None:
        raise ImageRejected(f"corrupt {kind} header")
    _check_size(size[0], size[1], max_pixels)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageRejected(f"corrupt {kind} data")
    if image.shape[1] != size[0] or image.shape[0] != size[1]:
        raise ImageRejected(f"corrupt {kind} data (size mismatch)")
    return image


def _bytes_array(buffer: np.ndarray) -> array.array:
    out = array.array("B")
    out.frombytes(np.ascontiguousarray(buffer).data)
    return out


def array_to_image(
    pixels: np.ndarray,
    encoding: str,
    header: Header | None = None,
    *,
    step: int | None = None,
    is_bigendian: bool = False,
) -> Image:
    """Build a sensor_msgs/Image from an array already in `encoding`'s channel order.

    Args:
        pixels: (H, W) or (H, W, C) uint8 / uint16 array laid out as `encoding` says.
        encoding: a key of `SUPPORTED_ENCODINGS` (or a depth encoding, for tests).
        header: copied into the message (a default Header when None).
        step: row stride in bytes; larger than the packed row to add padding (zero bytes).
        is_bigendian: byte order of 16-bit data in the message.
    """
    if pixels.ndim not in (2, 3):
        raise ValueError(f"expected (H, W) or (H, W, C), got {pixels.shape}")
    height, width = pixels.shape[:2]
    if pixels.dtype == np.uint16:
        pixels = pixels.astype(">u2" if is_bigendian else "<u2")
    elif pixels.dtype != np.uint8:
        raise ValueError(f"expected uint8 or uint16 pixels, got {pixels.dtype}")
    row = np.ascontiguousarray(pixels).view(np.uint8).reshape(height, -1)
    row_bytes = row.shape[1]
    step = row_bytes if step is None else int(step)
    if step < row_bytes:
        raise ValueError(f"step {step} < row size {row_bytes}")
    if step > row_bytes:
        padded = np.zeros((height, step), np.uint8)
        padded[:, :row_bytes] = row
        row = padded
    msg = Image()
    msg.header = header if header is not None else Header(stamp=Time())
    msg.height, msg.width = int(height), int(width)
    msg.encoding = encoding
    msg.is_bigendian = bool(is_bigendian)
    msg.step = step
    msg.data = _bytes_array(row)
    return msg


def bgr_to_image(image_bgr: np.ndarray, header: Header | None = None) -> Image:
    """Build a `bgr8` sensor_msgs/Image from an (H, W, 3) uint8 BGR array."""
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 BGR, got {image_bgr.shape} {image_bgr.dtype}")
    return array_to_image(image_bgr, "bgr8", header)


def bgr_to_compressed(
    image_bgr: np.ndarray, header: Header | None = None, fmt: str = "jpeg", quality: int = 90
) -> CompressedImage:
    """Encode an (H, W, 3) uint8 BGR array as a JPEG or PNG sensor_msgs/CompressedImage."""
    if fmt not in ("jpeg", "png"):
        raise ValueError(f"fmt must be 'jpeg' or 'png', got {fmt!r}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == "jpeg" else []
    ok, encoded = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", image_bgr, params)
    if not ok:
        raise ValueError("OpenCV could not encode the image")
    msg = CompressedImage()
    msg.header = header if header is not None else Header(stamp=Time())
    msg.format = fmt
    msg.data = _bytes_array(encoded)
    return msg
