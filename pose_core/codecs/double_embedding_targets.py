"""Double Embedding training targets: the person centre and the local-embedding offsets.

Follows `plyplyply/pytorch-DEM2` @ 06f188d, written anew:
- `joints_with_centre`: `lib/dataset/COCOKeypoints.py::get_joints` with `WITH_CENTER`: a row J
  is appended to each person, visibility 1 when the person has labelled joints. Release: centre
  = (sum of all J (x, y), unlabelled (0, 0) or not) / number of labelled joints; paper: the mean
  of the labelled joints.
- `encode_offsets`: `lib/dataset/target_generators/target_generators.py::OffsetGenerator`
  (tao 7): for every labelled, in-map (truncated position) joint that is not a root joint, all
  pixels of the (2 tao + 1)^2 square around it (clipped to the map) get (target - pixel) / Z,
  Z = sqrt(2) * r, as (dy, dx): face joints to the person centre; limb joints to the parent,
  then to the centre. Release: face offsets are summed and counted; limb offsets are written
  over (last person wins) yet counted, the parent needs only to warp inside the map (its
  visibility is not checked); every channel is then divided by its count (>= 1). Paper: limb
  offsets are summed like the face ones (the mean over overlapping people) and a parent must be
  labelled.
- heatmaps of the J + 1 channels: `codecs.heatmap.HeatmapGenerator`; AE joint indices of the
  J + 1 channels: `codecs.associative_embedding.encode_joint_indices`.

Shapes and frames: joints (P, J, 3) / (P, J + 1, 3) x, y, visibility in output pixels of the
square map of side r; offsets (C, r, r) float32 (C from `DemPartition`).
"""

from __future__ import annotations

import numpy as np

from pose_core.models.double_embedding import DemPartition

__all__ = ["OFFSET_SQUARE_HALF_SIZE", "joints_with_centre", "encode_offsets"]

OFFSET_SQUARE_HALF_SIZE = 7  # the release's tao, in output pixels at every resolution


def joints_with_centre(joints: np.ndarray, release: bool = True) -> np.ndarray:
    """(P, J, >=3) -> (P, J + 1, 3): the person centre appended (see the module docstring)."""
    joints = np.asarray(joints, dtype=np.float64)[..., :3]
    out = np.zeros((joints.shape[0], joints.shape[1] + 1, 3))
    out[:, :-1] = joints
    labelled = joints[:, :, 2] > 0
    count = labelled.sum(axis=1)
    for p in np.nonzero(count)[0]:
        points = joints[p, :, :2] if release else joints[p, labelled[p], :2]
        out[p, -1, :2] = np.sum(points, axis=0) / count[p]
        out[p, -1, 2] = 1
    return out


def _square(x: int, y: int, size: int, half: int) -> tuple[slice, slice, np.ndarray, np.ndarray]:
    """Rows / columns of the clipped square and the pixel grids (y, x) over it."""
    x0, x1 = max(0, x - half), min(size, x + half + 1)
    y0, y1 = max(0, y - half), min(size, y + half + 1)
    yy, xx = np.meshgrid(np.arange(y0, y1), np.arange(x0, x1), indexing="ij")
    return slice(y0, y1), slice(x0, x1), yy, xx


def encode_offsets(
    joints: np.ndarray,
    output_size: int,
    partition: DemPartition,
    release: bool = True,
    half_size: int = OFFSET_SQUARE_HALF_SIZE,
) -> np.ndarray:
    """Offset targets of one image at one resolution.

    Args:
        joints: (P, J + 1, >=3) joints with the centre last, output pixels.
        output_size: side r of the square map.
        partition: joint partition and parent table.
        release: the released overlap / parent rules (else the paper-mode fixes).
        half_size: half side of the squares (tao).

    Returns:
        (C, r, r) float32 normalised offsets.
    """
    r = int(output_size)
    z = (2 * r**2) ** 0.5
    first = partition.offset_channels()
    offsets = np.zeros((partition.num_offsets, r, r), np.float32)
    counts = np.zeros_like(offsets)
    joints = np.asarray(joints, dtype=np.float64)
    for joint in sorted(first):
        c = first[joint]
        for person in joints:
            if person[joint, 2] <= 0:
                continue
            x, y = int(person[joint, 0]), int(person[joint, 1])
            if x < 0 or y < 0 or x >= r or y >= r:
                continue
            rows, cols, yy, xx = _square(x, y, r, half_size)
            centre = person[-1]
            if joint in partition.face:
                targets = ((c, centre),)
            else:
                parent = person[partition.parent_of(joint)]
                inside = 0 <= parent[0] < r and 0 <= parent[1] < r
                usable = inside and (release or parent[2] > 0)
                targets = (((c, parent),) if usable else ()) + ((c + 2, centre),)
            for channel, target in targets:
                dy, dx = (target[1] - yy) / z, (target[0] - xx) / z
                if release and joint not in partition.face:
                    offsets[channel, rows, cols] = dy
                    offsets[channel + 1, rows, cols] = dx
                else:
                    offsets[channel, rows, cols] += dy
                    offsets[channel + 1, rows, cols] += dx
                counts[channel:channel + 2, rows, cols] += 1
    counts[counts == 0] = 1
    offsets /= counts
    return offsets
