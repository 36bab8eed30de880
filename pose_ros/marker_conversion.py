"""`pose_core.Poses` -> visualization_msgs/MarkerArray (RViz skeletons).

Frame: the markers are stamped with the source image's header (its camera frame_id, an optical
frame: x right, y down, z forward). A pixel (u, v) of a W x H image is drawn at

    x = (u - W / 2) * metres_per_pixel,  y = (v - H / 2) * metres_per_pixel,  z = plane_depth

i.e. on a plane `plane_depth` metres in front of the camera, centred on the optical axis, the
image keeping its orientation. With the defaults (2 mm per pixel, 1 m) a 640 x 480 image spans
1.28 m x 0.96 m. This is a display convention, not a 3D measurement; with 3D keypoints (`positions`, from the
depth stage) the joints are drawn where they are, in the header's (depth camera's) frame.

Markers: the first is DELETEALL (clears the previous frame's people); then per person (index i,
most confident first) a LINE_LIST of the skeleton edges whose two joints are both above
`min_score` (id 2 i) and a SPHERE_LIST of those joints (id 2 i + 1), namespace `ns`.
"""

from __future__ import annotations

import colorsys

import numpy as np

from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from pose_core.keypoint_specs import KeypointSpec
from pose_core.visualization import UNTRACKED_COLOUR_OFFSET
from pose_core.structures import Poses

__all__ = ["poses_to_markers", "pixel_to_marker_point", "DEFAULT_METRES_PER_PIXEL"]

DEFAULT_METRES_PER_PIXEL = 0.002
DEFAULT_PLANE_DEPTH = 1.0


def pixel_to_marker_point(
    u: float,
    v: float,
    image_wh: tuple[int, int],
    metres_per_pixel: float = DEFAULT_METRES_PER_PIXEL,
    plane_depth: float = DEFAULT_PLANE_DEPTH,
) -> Point:
    """Position of image pixel (u, v) in the marker frame (see the module docstring)."""
    return Point(
        x=(float(u) - image_wh[0] / 2.0) * metres_per_pixel,
        y=(float(v) - image_wh[1] / 2.0) * metres_per_pixel,
        z=float(plane_depth),
    )


def _person_colour(index: int) -> ColorRGBA:
    red, green, blue = colorsys.hsv_to_rgb((index * 0.618034) % 1.0, 0.85, 1.0)
    return ColorRGBA(r=red, g=green, b=blue, a=1.0)


def poses_to_markers(
    poses: Poses,
    header: Header,
    image_wh: tuple[int, int],
    spec: KeypointSpec,
    *,
    min_score: float = 0.1,
    metres_per_pixel: float = DEFAULT_METRES_PER_PIXEL,
    plane_depth: float = DEFAULT_PLANE_DEPTH,
    ns: str = "people",
    lifetime_s: float = 1.0,
    positions: np.ndarray | None = None,
    valid: np.ndarray | None = None,
) -> MarkerArray:
    """Build the skeleton markers of one image (people in score order).

    Args:
        poses: people in image pixels.
        header: the source image's header (frame and stamp of every marker).
        image_wh: (width, height) of the source image.
        spec: keypoint layout (skeleton edges).
        min_score: joints at or below this score are not drawn.
        metres_per_pixel: display scale.
        plane_depth: distance of the display plane from the camera, metres.
        ns: marker namespace.
        lifetime_s: markers disappear after this time if nothing replaces them.
        positions / valid: (P, J, 3) metres and (P, J) bool: 3D keypoints (in `header`'s
            frame, e.g. the depth camera's); when given, joints are drawn at their positions
            (those without one are left out) instead of on the display plane.
    """
    array = MarkerArray()
    clear = Marker(header=header, ns=ns, action=Marker.DELETEALL)
    markers = [clear]
    lifetime = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1.0) * 1e9))
    order = sorted(range(len(poses)), key=lambda i: -float(poses.scores[i]))
    line_width = 3.0 * metres_per_pixel
    for rank, person_index in enumerate(order):
        keypoints = poses.keypoints[person_index].tolist()
        if positions is not None and valid is not None:
            points = [
                Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))
                if ok and score > min_score else None
                for p, ok, (_, _, score) in zip(positions[person_index],
                                                valid[person_index], keypoints)
            ]
        else:
            points = [
                pixel_to_marker_point(x, y, image_wh, metres_per_pixel, plane_depth)
                if score > min_score
                else None
                for x, y, score in keypoints
            ]
        # tracked people keep their colour from frame to frame (as in the drawings)
        track_id = -1 if poses.ids is None else int(poses.ids[person_index])
        colour = _person_colour(track_id if track_id >= 0 else UNTRACKED_COLOUR_OFFSET + rank)
        lines = Marker(header=header, ns=ns, id=2 * rank, type=Marker.LINE_LIST)
        lines.action = Marker.ADD
        lines.pose.orientation.w = 1.0
        lines.scale.x = line_width
        lines.color = colour
        lines.lifetime = lifetime
        lines.points = [
            p
            for start, end in spec.skeleton
            if points[start] is not None and points[end] is not None
            for p in (points[start], points[end])
        ]
        joints = Marker(header=header, ns=ns, id=2 * rank + 1, type=Marker.SPHERE_LIST)
        joints.action = Marker.ADD
        joints.pose.orientation.w = 1.0
        joints.scale.x = joints.scale.y = joints.scale.z = 2.0 * line_width
        joints.color = colour
        joints.lifetime = lifetime
        joints.points = [p for p in points if p is not None]
        markers.extend((lines, joints))
    array.markers = markers
    return array
