"""sensor_msgs/Image <-> ndarray: every encoding against OpenCV, step padding, rejections."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from pose_ros.image_conversion import (
    ImageRejected,
    array_to_image,
    bgr_to_compressed,
    bgr_to_image,
    compressed_image_size,
    compressed_to_bgr,
    image_to_bgr,
)

pytestmark = pytest.mark.ros


def _bgr(height: int = 37, width: int = 50, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _padding_steps(row_bytes: int) -> list[int | None]:
    """No padding, one odd byte, and a 64-byte-aligned stride."""
    return [None, row_bytes + 1, (row_bytes + 63) // 64 * 64 + 64]


@pytest.mark.parametrize(
    ("encoding", "from_bgr"),
    [
        ("bgr8", None),
        ("8UC3", None),
        ("rgb8", cv2.COLOR_BGR2RGB),
        ("bgra8", cv2.COLOR_BGR2BGRA),
        ("8UC4", cv2.COLOR_BGR2BGRA),
        ("rgba8", cv2.COLOR_BGR2RGBA),
    ],
)
def test_colour_encodings_round_trip_exactly(encoding: str, from_bgr: int | None) -> None:
    bgr = _bgr()
    pixels = bgr if from_bgr is None else cv2.cvtColor(bgr, from_bgr)
    row_bytes = pixels.shape[1] * (pixels.shape[2])
    for step in _padding_steps(row_bytes):
        msg = array_to_image(pixels, encoding, step=step)
        out = image_to_bgr(msg)
        assert out.dtype == np.uint8 and out.shape == bgr.shape and out.flags.c_contiguous
        np.testing.assert_array_equal(out, bgr)


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono8_matches_opencv_gray_to_bgr(encoding: str) -> None:
    gray = cv2.cvtColor(_bgr(), cv2.COLOR_BGR2GRAY)
    for step in _padding_steps(gray.shape[1]):
        out = image_to_bgr(array_to_image(gray, encoding, step=step))
        np.testing.assert_array_equal(out, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))


@pytest.mark.parametrize("big_endian", [False, True])
def test_mono16_is_scaled_to_8_bit_like_opencv(big_endian: bool) -> None:
    gray16 = np.random.default_rng(1).integers(0, 65536, (21, 34), dtype=np.uint16)
    gray16[0, :4] = (0, 257, 65535, 128)
    expected = cv2.convertScaleAbs(gray16, alpha=255.0 / 65535.0)
    for step in (None, 34 * 2 + 6):
        msg = array_to_image(gray16, "mono16", step=step, is_bigendian=big_endian)
        assert msg.is_bigendian == big_endian
        out = image_to_bgr(msg)
        np.testing.assert_array_equal(out, cv2.cvtColor(expected, cv2.COLOR_GRAY2BGR))
    assert tuple(out[0, :4, 0]) == (0, 1, 255, 0)


def test_big_endian_bytes_are_read_as_big_endian() -> None:
    msg = array_to_image(np.zeros((1, 2), np.uint16), "mono16")
    msg.is_bigendian = True
    msg.data = bytes([0xFF, 0x00, 0x00, 0xFF])  # big-endian 65280 and 255
    out = image_to_bgr(msg)
    assert tuple(out[0, :, 0]) == (254, 1)


@pytest.mark.parametrize(("encoding", "from_bgr"), [("rgb16", True), ("bgr16", False)])
def test_16_bit_colour(encoding: str, from_bgr: bool) -> None:
    bgr16 = np.random.default_rng(2).integers(0, 65536, (9, 12, 3), dtype=np.uint16)
    pixels = bgr16[:, :, ::-1] if from_bgr else bgr16
    out = image_to_bgr(array_to_image(np.ascontiguousarray(pixels), encoding, step=12 * 6 + 2))
    np.testing.assert_array_equal(out, cv2.convertScaleAbs(bgr16, alpha=255.0 / 65535.0))


@pytest.mark.parametrize(
    ("encoding", "to_bgr"),
    [
        ("yuv422", cv2.COLOR_YUV2BGR_UYVY),
        ("uyvy", cv2.COLOR_YUV2BGR_UYVY),
        ("yuv422_yuy2", cv2.COLOR_YUV2BGR_YUYV),
        ("yuyv", cv2.COLOR_YUV2BGR_YUYV),
    ],
)
def test_packed_yuv422_matches_opencv(encoding: str, to_bgr: int) -> None:
    packed = np.random.default_rng(3).integers(0, 256, (16, 24, 2), dtype=np.uint8)
    for step in _padding_steps(24 * 2):
        out = image_to_bgr(array_to_image(packed, encoding, step=step))
        np.testing.assert_array_equal(out, cv2.cvtColor(packed, to_bgr))


def test_output_does_not_alias_the_message_buffer() -> None:
    bgr = _bgr()
    msg = bgr_to_image(bgr)
    out = image_to_bgr(msg)
    out[:] = 0
    np.testing.assert_array_equal(image_to_bgr(msg), bgr)


def test_bgr_to_image_fields_and_header() -> None:
    msg = bgr_to_image(_bgr(5, 7))
    assert (msg.height, msg.width, msg.step, msg.encoding) == (5, 7, 21, "bgr8")
    assert len(msg.data) == 5 * 21


def _raw(encoding: str, width: int, height: int, step: int, size: int) -> Image:
    msg = Image(encoding=encoding, width=width, height=height, step=step)
    msg.data = bytes(size)
    return msg


@pytest.mark.parametrize(
    ("msg", "reason_start"),
    [
        (_raw("16UC1", 4, 4, 8, 32), "depth/float encoding '16UC1'"),
        (_raw("32FC1", 4, 4, 16, 64), "depth/float encoding"),
        (_raw("bayer_rggb8", 4, 4, 4, 16), "unsupported encoding 'bayer_rggb8'"),
        (_raw("", 4, 4, 12, 48), "unsupported encoding ''"),
        (_raw("bgr8", 0, 4, 0, 0), "zero-size image"),
        (_raw("bgr8", 4, 0, 12, 0), "zero-size image"),
        (_raw("bgr8", 7680, 4320, 7680 * 3, 16), "image too large (7680x4320"),
        (_raw("bgr8", 4, 4, 11, 44), "step 11 < width*bytes_per_pixel 12"),
        (_raw("bgr8", 4, 4, 12, 47), "data size 47 != step*height 48"),
        (_raw("bgr8", 4, 4, 12, 49), "data size 49 != step*height 48"),
        (_raw("mono16", 4, 4, 9, 36), "odd step 9"),
        (_raw("yuv422", 3, 2, 6, 12), "odd width 3"),
    ],
)
def test_malformed_images_are_rejected_with_a_reason(msg: Image, reason_start: str) -> None:
    with pytest.raises(ImageRejected) as error:
        image_to_bgr(msg)
    assert error.value.reason.startswith(reason_start), error.value.reason


def test_max_pixels_is_configurable() -> None:
    msg = bgr_to_image(_bgr(10, 10))
    assert image_to_bgr(msg, max_pixels=100).shape == (10, 10, 3)
    with pytest.raises(ImageRejected, match="too large"):
        image_to_bgr(msg, max_pixels=99)


def test_compressed_png_is_lossless_and_jpeg_matches_opencv() -> None:
    bgr = _bgr(40, 60)
    png = bgr_to_compressed(bgr, fmt="png")
    assert png.format == "png"
    np.testing.assert_array_equal(compressed_to_bgr(png), bgr)
    jpeg = bgr_to_compressed(bgr, fmt="jpeg", quality=80)
    expected = cv2.imdecode(np.frombuffer(bytes(jpeg.data), np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(compressed_to_bgr(jpeg), expected)
    assert compressed_image_size(bytes(jpeg.data)) == ("jpeg", (60, 40))
    assert compressed_image_size(bytes(png.data)) == ("png", (60, 40))


def _compressed(data: bytes, fmt: str = "jpeg") -> CompressedImage:
    msg = CompressedImage(format=fmt)
    msg.data = data
    return msg


def test_compressed_rejections() -> None:
    jpeg = bytes(bgr_to_compressed(_bgr(40, 60)).data)
    png = bytes(bgr_to_compressed(_bgr(40, 60), fmt="png").data)
    cases = {
        b"": "empty compressed data",
        b"GIF89a....": "unknown compressed format",
        jpeg[:3]: "corrupt jpeg header",
        jpeg[: len(jpeg) // 3]: "corrupt jpeg data",
        png[: len(png) // 2]: "corrupt png data",
    }
    for data, reason in cases.items():
        with pytest.raises(ImageRejected) as error:
            compressed_to_bgr(_compressed(data))
        assert error.value.reason.startswith(reason), (reason, error.value.reason)


def test_8k_compressed_frames_are_rejected_from_the_header_without_decoding() -> None:
    # A tiny PNG whose header announces 7680x4320: the IHDR is patched, nothing is decoded.
    png = bytearray(bgr_to_compressed(_bgr(8, 8), fmt="png").data)
    png[16:24] = (7680).to_bytes(4, "big") + (4320).to_bytes(4, "big")
    with pytest.raises(ImageRejected, match=r"too large \(7680x4320"):
        compressed_to_bgr(_compressed(bytes(png), "png"))
    # A real 8K JPEG (uniform, so it is small) is also rejected before decoding.
    jpeg = cv2.imencode(".jpg", np.zeros((4320, 7680, 3), np.uint8))[1].tobytes()
    with pytest.raises(ImageRejected, match="too large"):
        compressed_to_bgr(_compressed(jpeg))
