"""The body model: named body points and parts, forward kinematics, and painting a person.

A person is a 3D stick-body on the COCO skeleton: 27 named points (the 17 COCO joints with the
same indices as COCO_17, then head centre, neck base, head top, hand tips, heels, toes, pelvis)
and 15 body parts. Body frame: X = the person's left, Y = up, Z = forward, in units of the
standing height; the body is turned by its yaw about Y, projected orthographically, rolled in
the image plane and scaled to pixels. `Body.points` (27, 2) are image pixels (x, y), integer
values at pixel centres; `Body.depth` (27,) grows toward the camera.

People are painted on a `Canvas`: the BGR uint8 (H, W, 3) image and a (H, W) uint16 part-label
map drawn with the same primitives, label = 1 + person * PART_STRIDE + part (0: no person), so
the renderer reads occlusion back exactly. `POINT_PARTS` says which parts may show each
annotated point.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from pose_core.data.synthetic.scene import PersonPose, PersonStyle

__all__ = [
    "COCO_POINTS", "CROWDPOSE_POINTS", "FIX_ONE", "FIX_SHIFT", "PART_STRIDE", "POINT_PARTS",
    "SEGMENTS", "Body", "Canvas", "draw_person", "fix", "pose_body", "pose_extent",
]

# ----------------------------------------------------------------------------------------------
# Body model constants. Lengths are fractions of the standing height (head top to soles).
# ----------------------------------------------------------------------------------------------

# Named body points: the 17 COCO joints first (same indices as COCO_17), then helpers.
_HEAD_CENTER, _NECK_BASE, _HEAD_TOP = 17, 18, 19
_L_HAND_TIP, _R_HAND_TIP, _L_HEEL, _R_HEEL, _L_TOE, _R_TOE, _PELVIS = 20, 21, 22, 23, 24, 25, 26
_NUM_POINTS = 27

# Body parts (label value = 1 + person * PART_STRIDE + part).
_TORSO, _HEAD, _NECK = 0, 1, 2
_L_UPPER_ARM, _L_FOREARM, _L_HAND, _R_UPPER_ARM, _R_FOREARM, _R_HAND = 3, 4, 5, 6, 7, 8
_L_THIGH, _L_SHIN, _L_FOOT, _R_THIGH, _R_SHIN, _R_FOOT = 9, 10, 11, 12, 13, 14
PART_STRIDE = 16
# The distal body point of each limb part (used to order parts at equal depth).
_PART_END = {
    _L_UPPER_ARM: 7, _L_FOREARM: 9, _L_HAND: _L_HAND_TIP, _R_UPPER_ARM: 8, _R_FOREARM: 10,
    _R_HAND: _R_HAND_TIP, _L_THIGH: 13, _L_SHIN: 15, _L_FOOT: _L_TOE, _R_THIGH: 14,
    _R_SHIN: 16, _R_FOOT: _R_TOE,
}


def _bits(*parts: int) -> int:
    return sum(1 << p for p in parts)


# For each annotated point (COCO 0..16, then head top, neck base): parts that may show it.
POINT_PARTS: dict[int, int] = {
    0: _bits(_HEAD), 1: _bits(_HEAD), 2: _bits(_HEAD), 3: _bits(_HEAD), 4: _bits(_HEAD),
    5: _bits(_TORSO, _L_UPPER_ARM, _NECK), 6: _bits(_TORSO, _R_UPPER_ARM, _NECK),
    7: _bits(_L_UPPER_ARM, _L_FOREARM), 8: _bits(_R_UPPER_ARM, _R_FOREARM),
    9: _bits(_L_FOREARM, _L_HAND), 10: _bits(_R_FOREARM, _R_HAND),
    11: _bits(_TORSO, _L_THIGH), 12: _bits(_TORSO, _R_THIGH),
    13: _bits(_L_THIGH, _L_SHIN), 14: _bits(_R_THIGH, _R_SHIN),
    15: _bits(_L_SHIN, _L_FOOT), 16: _bits(_R_SHIN, _R_FOOT),
    _HEAD_TOP: _bits(_HEAD), _NECK_BASE: _bits(_NECK, _TORSO, _HEAD),
}
# Body point index of each output joint, per keypoint layout.
COCO_POINTS = tuple(range(17))
CROWDPOSE_POINTS = (5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, _HEAD_TOP, _NECK_BASE)

# Face features on the head: (point, azimuth from the nose toward the person's left (rad),
# vertical offset in head radii, lowest cos(azimuth + head yaw) at which the feature is seen).
_FACE_FEATURES = (
    (0, 0.0, 0.25, -0.25),
    (1, 0.55, -0.05, -0.05),
    (2, -0.55, -0.05, -0.05),
    (3, math.pi / 2, 0.05, -0.2),
    (4, -math.pi / 2, 0.05, -0.2),
)


# Nominal segment lengths (fraction of height): torso, neck, upper arm, forearm, hand,
# thigh, shin, shoulder half-width; `proportions` multiplies each.
SEGMENTS = (0.29, 0.045, 0.18, 0.15, 0.075, 0.245, 0.245, 0.115)

# ----------------------------------------------------------------------------------------------
# Forward kinematics and orthographic projection
# ----------------------------------------------------------------------------------------------

_Vec3 = tuple[float, float, float]


def _limb_dirs(flexion: float, abduction: float, bend: float, side: float,
               bend_forward: bool) -> tuple[_Vec3, _Vec3]:
    """Unit directions (body frame: X left, Y up, Z forward) of a proximal and distal segment.

    The proximal segment hangs down, swung forward by `flexion` and sideways (outward) by
    `abduction`; the distal one is bent by `bend` toward the front (elbow) or back (knee).
    """
    f, a = math.radians(flexion), math.radians(abduction)
    ux, uy, uz = side * math.sin(a) * math.cos(f), -math.cos(a) * math.cos(f), math.sin(f)
    norm = math.sqrt(ux * ux + uy * uy + uz * uz)
    ux, uy, uz = ux / norm, uy / norm, uz / norm
    tz = 1.0 if bend_forward else -1.0
    # component of the bend target (+-Z) orthogonal to the proximal segment
    px, py, pz = -ux * uz * tz, -uy * uz * tz, tz - uz * uz * tz
    norm = math.sqrt(px * px + py * py + pz * pz)
    if norm > 1e-6:
        px, py, pz = px / norm, py / norm, pz / norm
    else:
        px, py, pz = 0.0, 1.0, 0.0
    cb, sb = math.cos(math.radians(bend)), math.sin(math.radians(bend))
    upper = (ux, uy, uz)
    lower = (ux * cb + px * sb, uy * cb + py * sb, uz * cb + pz * sb)
    return upper, lower


@dataclass(frozen=True)
class Body:
    """A posed person in image pixels: points (_NUM_POINTS, 2), depth (_NUM_POINTS,)."""

    points: np.ndarray
    depth: np.ndarray
    radii: dict[str, float]
    head_axes: tuple[float, float]
    head_yaw: float  # radians, total
    yaw: float  # radians, body
    roll: float  # radians
    hidden_face: tuple[bool, ...]  # per COCO face point 0..4


def pose_body(pose: PersonPose) -> Body:
    """The posed person in image pixels (the shape is memoised per pose, then translated)."""
    local = _local_body(replace(pose, center_xy=(0.0, 0.0)))
    points = local.points + np.array(pose.center_xy)
    return replace(local, points=points)


@functools.lru_cache(maxsize=256)
def _local_body(pose: PersonPose) -> Body:
    """`pose_body` for a pose whose pelvis is at the origin (arrays are read-only).

    Body frame: X = the person's left, Y = up, Z = forward, in units of the standing height;
    the upper body is bent forward by `pitch` about X at the pelvis.
    """
    torso, neck, upper_arm, forearm, hand, thigh, shin, shoulder_w = (
        n * p for n, p in zip(SEGMENTS, pose.proportions, strict=True))
    hip_w = 0.085 * pose.proportions[7] ** 0.5
    girth = pose.girth
    bend = math.radians(-pose.pitch)
    cb, sb = math.cos(bend), math.sin(bend)

    def up(x: float, y: float, z: float) -> tuple[float, float, float]:
        """Rotate an upper-body vector by the forward bend."""
        return (x, cb * y - sb * z, sb * y + cb * z)

    def add(a: Sequence[float], b: Sequence[float], k: float = 1.0) -> tuple[float, float, float]:
        return (a[0] + k * b[0], a[1] + k * b[1], a[2] + k * b[2])

    pts: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)] * _NUM_POINTS
    head_r = 0.062
    neck_base = up(0.0, torso, 0.0)
    pts[_NECK_BASE] = neck_base
    head = add(neck_base, up(0.0, neck + head_r, 0.01))
    pts[_HEAD_CENTER] = head
    pts[_HEAD_TOP] = add(head, up(0.0, head_r * 1.08, 0.0))
    for side, sh, el, wr, tip, hp, kn, an, heel, toe, k in (
        (1.0, 5, 7, 9, _L_HAND_TIP, 11, 13, 15, _L_HEEL, _L_TOE, 0),
        (-1.0, 6, 8, 10, _R_HAND_TIP, 12, 14, 16, _R_HEEL, _R_TOE, 1),
    ):
        pts[sh] = up(side * shoulder_w, torso - 0.025, 0.0)
        d_up, d_low = _limb_dirs(pose.shoulder_flexion[k], pose.shoulder_abduction[k],
                                 pose.elbow_flexion[k], side, bend_forward=True)
        d_up, d_low = up(*d_up), up(*d_low)
        pts[el] = add(pts[sh], d_up, upper_arm)
        pts[wr] = add(pts[el], d_low, forearm)
        pts[tip] = add(pts[wr], d_low, hand)
        pts[hp] = (side * hip_w, 0.0, 0.0)
        d_th, d_sh = _limb_dirs(pose.hip_flexion[k], pose.hip_abduction[k],
                                pose.knee_flexion[k], side, bend_forward=False)
        pts[kn] = add(pts[hp], d_th, thigh)
        pts[an] = add(pts[kn], d_sh, shin)
        pts[heel] = add(pts[an], (0.0, -0.03, -0.03))
        pts[toe] = add(pts[an], (side * 0.02, -0.04, 0.11))
    # face points on the head surface, seen according to the head yaw
    yaw = math.radians(pose.yaw)
    head_yaw = yaw + math.radians(pose.head_yaw)
    hidden = []
    for point, azimuth, dy, min_cos in _FACE_FEATURES:
        a = azimuth + head_yaw - yaw  # relative to the body frame
        pts[point] = add(head, up(0.85 * head_r * math.sin(a), -dy * head_r,
                                  0.85 * head_r * math.cos(a)))
        hidden.append(math.cos(azimuth + head_yaw) < min_cos)
    # body frame -> camera: yaw about the vertical axis, then image-plane roll, then pixels
    cy, sy = math.cos(yaw), math.sin(yaw)
    roll = math.radians(pose.roll)
    cr, sr = math.cos(roll), math.sin(roll)
    s = pose.height_px
    xy = np.empty((_NUM_POINTS, 2))
    depth = np.empty(_NUM_POINTS)
    for i, (x, y, z) in enumerate(pts):
        x_img, y_img = x * cy + z * sy, -y
        xy[i, 0] = (x_img * cr - y_img * sr) * s
        xy[i, 1] = (x_img * sr + y_img * cr) * s
        depth[i] = (-x * sy + z * cy) * s
    radii = {
        "upper_arm": 0.034 * girth * s, "forearm": 0.027 * girth * s, "hand": 0.026 * s,
        "thigh": 0.056 * girth * s, "shin": 0.038 * girth * s, "foot": 0.026 * s,
        "neck": 0.028 * girth * s, "torso_depth": 0.065 * girth * s,
        "shoulder": shoulder_w * s, "hip": (hip_w + 0.035 * girth) * s,
    }
    xy.setflags(write=False)
    depth.setflags(write=False)
    return Body(points=xy, depth=depth, radii=radii, head_axes=(0.058 * s, 0.066 * s),
                 head_yaw=head_yaw, yaw=yaw, roll=roll, hidden_face=tuple(hidden))


def pose_extent(pose: PersonPose) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) image box of the posed person (pixels)."""
    body = pose_body(pose)
    pad = max(body.head_axes) + body.radii["thigh"]
    p = body.points
    return (float(p[:, 0].min() - pad), float(p[:, 1].min() - pad),
            float(p[:, 0].max() + pad), float(p[:, 1].max() + pad))


# ----------------------------------------------------------------------------------------------
# Painting (OpenCV fixed-point drawing: coordinates carry FIX_SHIFT fractional bits)
# ----------------------------------------------------------------------------------------------

FIX_SHIFT = 4
FIX_ONE = 1 << FIX_SHIFT


def fix(xy: np.ndarray) -> np.ndarray:
    """Image points (..., 2) as OpenCV fixed-point int32 coordinates."""
    return np.round(np.asarray(xy) * FIX_ONE).astype(np.int32)


def _scaled(colour: Sequence[float], k: float) -> tuple[float, float, float]:
    return (min(colour[0] * k, 255.0), min(colour[1] * k, 255.0), min(colour[2] * k, 255.0))


class Canvas:
    """An image and its part-label map, painted together."""

    def __init__(self, image: np.ndarray, labels: np.ndarray, light: np.ndarray) -> None:
        self.image = image
        self.labels = labels
        self.light = light  # unit 2-vector toward the light (image frame)
        self.light_x, self.light_y = float(light[0]), float(light[1])

    def capsule(self, p0: np.ndarray, p1: np.ndarray, r0: float, r1: float,
                colour: Sequence[float], label: int, shade: bool = True) -> None:
        """A tapered capsule from p0 (radius r0) to p1 (radius r1), shaded like a cylinder."""
        x0, y0, x1, y1 = float(p0[0]), float(p0[1]), float(p1[0]), float(p1[1])
        dx, dy = x1 - x0, y1 - y0
        length = math.hypot(dx, dy)
        nx, ny = (-dy / length, dx / length) if length > 1e-6 else (1.0, 0.0)
        if nx * self.light_x + ny * self.light_y < 0:
            nx, ny = -nx, -ny
        r0, r1 = max(r0, 0.5), max(r1, 0.5)
        one = FIX_ONE
        quad = np.array([
            [round((x0 + nx * r0) * one), round((y0 + ny * r0) * one)],
            [round((x1 + nx * r1) * one), round((y1 + ny * r1) * one)],
            [round((x1 - nx * r1) * one), round((y1 - ny * r1) * one)],
            [round((x0 - nx * r0) * one), round((y0 - ny * r0) * one)],
        ], np.int32)
        c0, c1 = (round(x0 * one), round(y0 * one)), (round(x1 * one), round(y1 * one))
        ir0, ir1 = int(r0 * one), int(r1 * one)
        for target, value in ((self.labels, label), (self.image, _scaled(colour, 0.72)
                                                     if shade else colour)):
            cv2.fillConvexPoly(target, quad, value, cv2.LINE_8, FIX_SHIFT)
            cv2.circle(target, c0, ir0, value, -1, cv2.LINE_8, FIX_SHIFT)
            cv2.circle(target, c1, ir1, value, -1, cv2.LINE_8, FIX_SHIFT)
        if shade and min(r0, r1) >= 1.5:
            a0, a1 = 0.25 * r0, 0.25 * r1
            b0, b1 = 0.45 * r0, 0.45 * r1
            quad = np.array([
                [round((x0 + nx * (a0 + b0)) * one), round((y0 + ny * (a0 + b0)) * one)],
                [round((x1 + nx * (a1 + b1)) * one), round((y1 + ny * (a1 + b1)) * one)],
                [round((x1 + nx * (a1 - b1)) * one), round((y1 + ny * (a1 - b1)) * one)],
                [round((x0 + nx * (a0 - b0)) * one), round((y0 + ny * (a0 - b0)) * one)],
            ], np.int32)
            cv2.fillConvexPoly(self.image, quad, _scaled(colour, 1.08), cv2.LINE_8, FIX_SHIFT)

    def polygon(self, pts: np.ndarray, colour: Sequence[float], label: int) -> None:
        hull = cv2.convexHull(fix(pts))
        cv2.fillConvexPoly(self.labels, hull, label, cv2.LINE_8, FIX_SHIFT)
        cv2.fillConvexPoly(self.image, hull, _scaled(colour, 0.75), cv2.LINE_8, FIX_SHIFT)
        center = pts.mean(axis=0)
        size = float(np.ptp(pts, axis=0).max())
        inner = center + (pts - center) * 0.7 + self.light * 0.08 * size
        cv2.fillConvexPoly(self.image, cv2.convexHull(fix(inner)), _scaled(colour, 1.05),
                           cv2.LINE_8, FIX_SHIFT)

    def ellipse(self, center: np.ndarray, axes: tuple[float, float], angle_deg: float,
                colour: Sequence[float], label: int | None) -> None:
        c = (round(float(center[0]) * FIX_ONE), round(float(center[1]) * FIX_ONE))
        ax = (max(int(axes[0] * FIX_ONE), 1), max(int(axes[1] * FIX_ONE), 1))
        if label is not None:
            cv2.ellipse(self.labels, c, ax, angle_deg, 0, 360, label, -1, cv2.LINE_8, FIX_SHIFT)
        cv2.ellipse(self.image, c, ax, angle_deg, 0, 360, colour, -1, cv2.LINE_8, FIX_SHIFT)


def draw_person(canvas: Canvas, body: Body, style: PersonStyle, index: int) -> None:
    """Paint person number `index` of the scene, body part by body part, back to front."""
    p, depth, r = body.points, body.depth, body.radii
    base = 1 + index * PART_STRIDE
    sleeve = style.shirt if style.long_sleeves else style.skin
    shin_colour = style.pants if style.long_pants else style.skin
    parts: list[tuple[float, int]] = []

    def mean_depth(*ids: int) -> float:
        return float(sum(depth[i] for i in ids) / len(ids))

    def order_key(entry: tuple[float, int]) -> tuple[float, float]:
        # depth first; at equal depth the lower part in the image is in front (a rule that
        # does not depend on left / right, so mirrored people paint the same way)
        end = _PART_END.get(entry[1])
        return (round(entry[0], 6), 0.0 if end is None else float(p[end, 1]))

    arm_bias = 0.02 * r["shoulder"]
    parts += [
        (mean_depth(5, 7) + arm_bias, _L_UPPER_ARM), (mean_depth(7, 9) + arm_bias, _L_FOREARM),
        (mean_depth(9, _L_HAND_TIP) + arm_bias, _L_HAND),
        (mean_depth(6, 8) + arm_bias, _R_UPPER_ARM), (mean_depth(8, 10) + arm_bias, _R_FOREARM),
        (mean_depth(10, _R_HAND_TIP) + arm_bias, _R_HAND),
        (mean_depth(11, 13) - 0.01, _L_THIGH), (mean_depth(13, 15) - 0.01, _L_SHIN),
        (mean_depth(15, _L_TOE) - 0.01, _L_FOOT), (mean_depth(12, 14) - 0.01, _R_THIGH),
        (mean_depth(14, 16) - 0.01, _R_SHIN), (mean_depth(16, _R_TOE) - 0.01, _R_FOOT),
        (0.0, _TORSO), (0.001, _NECK), (0.002, _HEAD),
    ]
    # a limb reaching across the body in front is painted after the torso by its depth; ties
    # keep the list order (legs, then torso, neck, head before the arms at equal depth)
    parts.sort(key=order_key)
    cos_yaw = math.cos(body.head_yaw)
    sin_yaw = math.sin(body.head_yaw)
    for _, part in parts:
        label = base + part
        if part == _TORSO:
            _draw_torso(canvas, body, style, label)
        elif part == _NECK:
            canvas.capsule(p[_NECK_BASE], (p[_NECK_BASE] + p[_HEAD_CENTER]) / 2, r["neck"],
                           r["neck"] * 0.9, style.skin, label)
        elif part == _HEAD:
            _draw_head(canvas, body, style, label, cos_yaw, sin_yaw)
        elif part in (_L_UPPER_ARM, _R_UPPER_ARM):
            a, b = (5, 7) if part == _L_UPPER_ARM else (6, 8)
            canvas.capsule(p[a], p[b], r["upper_arm"], r["forearm"] * 1.05, style.shirt, label)
        elif part in (_L_FOREARM, _R_FOREARM):
            a, b = (7, 9) if part == _L_FOREARM else (8, 10)
            canvas.capsule(p[a], p[b], r["forearm"], r["forearm"] * 0.8, sleeve, label)
        elif part in (_L_HAND, _R_HAND):
            a, b = (9, _L_HAND_TIP) if part == _L_HAND else (10, _R_HAND_TIP)
            canvas.capsule(p[a], p[b] * 0.6 + p[a] * 0.4, r["hand"] * 0.8, r["hand"],
                           style.skin, label)
        elif part in (_L_THIGH, _R_THIGH):
            a, b = (11, 13) if part == _L_THIGH else (12, 14)
            canvas.capsule(p[a], p[b], r["thigh"], r["shin"] * 1.1, style.pants, label)
        elif part in (_L_SHIN, _R_SHIN):
            a, b = (13, 15) if part == _L_SHIN else (14, 16)
            canvas.capsule(p[a], p[b], r["shin"] * 1.05, r["shin"] * 0.7, shin_colour, label)
        else:
            a, heel, toe = (15, _L_HEEL, _L_TOE) if part == _L_FOOT else (16, _R_HEEL, _R_TOE)
            canvas.capsule(p[heel], p[toe], r["foot"], r["foot"] * 0.8, style.shoes, label)
            canvas.capsule(p[a], p[heel], r["shin"] * 0.6, r["foot"], style.shoes, label,
                           shade=False)


def _draw_torso(canvas: Canvas, body: Body, style: PersonStyle, label: int) -> None:
    """The shirt (neckline on the front, stripes), trousers or a skirt, and a waist band."""
    p, r = body.points, body.radii
    depth_half = r["torso_depth"]
    axis_x = (p[5] - p[6])
    width_axis = axis_x / max(float(np.linalg.norm(axis_x)), 1e-6)
    # the torso seen from any yaw: its front width shrinks, its depth shows
    roll_dir = np.array([math.cos(body.roll), math.sin(body.roll)])
    sh_c = (p[5] + p[6]) / 2
    hp_c = (p[11] + p[12]) / 2
    span_sh = float(np.linalg.norm(p[5] - p[6])) / 2 + 0.6 * r["upper_arm"]
    span_hp = float(np.linalg.norm(p[11] - p[12])) / 2 + 0.4 * r["thigh"]
    span_sh = max(span_sh, depth_half)
    span_hp = max(span_hp, depth_half * 0.9)
    if float(np.linalg.norm(axis_x)) < 1e-3:
        width_axis = roll_dir
    down = hp_c - sh_c
    pts = np.stack([
        sh_c + width_axis * span_sh - down * 0.04,
        sh_c - width_axis * span_sh - down * 0.04,
        hp_c + width_axis * span_hp + down * 0.06,
        hp_c - width_axis * span_hp + down * 0.06,
        (sh_c + hp_c) / 2 + width_axis * span_hp * 0.95,
        (sh_c + hp_c) / 2 - width_axis * span_hp * 0.95,
    ])
    canvas.polygon(pts, style.shirt, label)
    cos_body, sin_body = math.cos(body.yaw), math.sin(body.yaw)
    if cos_body > 0.25:  # the front of the shirt: a neckline toward the viewer
        top = sh_c - down * 0.03 + width_axis * (0.45 * span_sh * sin_body)
        half = width_axis * (0.22 * span_sh * cos_body)
        neckline = np.stack([top + half, top - half,
                             top + down * 0.2 + width_axis * (0.1 * span_sh * sin_body)])
        cv2.fillConvexPoly(canvas.image, fix(neckline), _scaled(style.skin, 0.9),
                           cv2.LINE_8, FIX_SHIFT)
    if style.stripes:
        thick = max(int(round(0.35 * r["forearm"])), 1)
        for k in range(1, style.stripes + 1):
            t = k / (style.stripes + 1)
            c = sh_c + (hp_c - sh_c) * t * 0.9
            span = (span_sh * (1 - t) + span_hp * t) * 0.85
            a, b = fix(c + width_axis * span), fix(c - width_axis * span)
            cv2.line(canvas.image, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])),
                     style.stripe_colour, thick, cv2.LINE_8, FIX_SHIFT)
    # trousers / skirt over the pelvis, then a waist band
    waist = hp_c - down * 0.14
    if style.skirt:
        bottom = hp_c + down * 0.75
        flare = span_hp * 1.2 + 0.5 * abs(float((p[13] - p[14]) @ width_axis))
        hem = np.stack([waist + width_axis * span_hp * 0.95,
                        waist - width_axis * span_hp * 0.95,
                        bottom + width_axis * flare, bottom - width_axis * flare])
    else:
        hem = np.stack([waist + width_axis * span_hp * 0.97,
                        waist - width_axis * span_hp * 0.97,
                        hp_c + width_axis * span_hp + down * 0.07,
                        hp_c - width_axis * span_hp + down * 0.07])
    canvas.polygon(hem, style.pants, label)
    a, b = fix(waist + width_axis * span_hp * 0.95), fix(
        waist - width_axis * span_hp * 0.95)
    cv2.line(canvas.image, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])),
             _scaled(style.pants, 0.55), max(int(round(0.25 * r["thigh"])), 1),
             cv2.LINE_8, FIX_SHIFT)


def _draw_head(canvas: Canvas, body: Body, style: PersonStyle, label: int, cos_yaw: float,
               sin_yaw: float) -> None:
    p = body.points
    center = p[_HEAD_CENTER]
    ax_w, ax_h = body.head_axes
    angle = math.degrees(body.roll)
    right = np.array([math.cos(body.roll), math.sin(body.roll)])
    down = np.array([-math.sin(body.roll), math.cos(body.roll)])
    # ears first (they stick out at the sides)
    for point, hidden in ((3, body.hidden_face[3]), (4, body.hidden_face[4])):
        if not hidden:
            canvas.ellipse(p[point], (0.22 * ax_w, 0.32 * ax_h), angle, _scaled(style.skin, 0.85),
                           label)
    long_hair = style.long_hair
    if long_hair:  # hair falling behind the head
        canvas.ellipse(center + down * 0.45 * ax_h - right * 0.35 * ax_w * sin_yaw,
                       (ax_w * 1.05, ax_h * 1.05), angle, style.hair, label)
    if cos_yaw > -0.35:
        canvas.ellipse(center, (ax_w, ax_h), angle, style.hair, label)
        # face: a skin ellipse shifted toward where the head looks
        face_c = center + right * (0.3 * ax_w * sin_yaw) + down * 0.16 * ax_h
        face_w = ax_w * (0.55 + 0.3 * abs(cos_yaw))
        canvas.ellipse(face_c, (face_w, ax_h * 0.84), angle, style.skin, label)
        canvas.ellipse(face_c + right * (0.2 * face_w * (1 if canvas.light[0] < 0 else -1)),
                       (face_w * 0.55, ax_h * 0.55), angle, _scaled(style.skin, 1.07), None)
        eye_r = max(0.13 * ax_w, 0.6)
        for point in (1, 2):
            if not body.hidden_face[point]:
                canvas.ellipse(p[point], (eye_r, eye_r * 0.8), angle, (30.0, 25.0, 25.0), None)
        if not body.hidden_face[0]:
            canvas.ellipse(p[0], (0.14 * ax_w, 0.11 * ax_h), angle, _scaled(style.skin, 0.7),
                           label)
            mouth = p[0] + down * 0.3 * ax_h
            canvas.ellipse(mouth, (0.22 * ax_w * max(abs(cos_yaw), 0.4), 0.05 * ax_h), angle,
                           (60.0, 60.0, 150.0), None)
    else:  # seen from behind: the back of the head is hair, with a darker crown
        canvas.ellipse(center, (ax_w, ax_h), angle, style.hair, label)
        canvas.ellipse(center - down * 0.2 * ax_h, (ax_w * 0.6, ax_h * 0.5), angle,
                       _scaled(style.hair, 0.8), None)

