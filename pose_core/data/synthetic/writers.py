"""Writing COCO-format keypoint datasets: still images, video frames, top-down crops.

Each writer produces `out_dir/images/*.jpg` and `out_dir/annotations.json` (COCO keypoints
layout: `images`, `annotations`, `categories`). Keypoints are written flat as
[x, y, v, ...] in the pixels of the written image (integer values at pixel centres), rounded to
0.01, with x = y = v = 0 for unlabelled joints; `bbox` is xywh in the same pixels and `area` the
visible silhouette in square pixels. Image ids count from 1 in writing order, annotation ids
count from 1 across the dataset. Scene (or frame) i depends only on the seed and i, so the same
arguments give byte-identical files.

The three writers share `_write_coco_dataset`, which owns the folders, the loop over the scenes
with its progress bar, the JPEG files and `annotations.json`; each writer supplies the
`_Entry`s (image, image-record fields, annotations) of one scene.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pose_core.data.synthetic.config import (
    MAX_PEOPLE_LIMIT,
    SyntheticSceneConfig,
    difficulty_config,
)
from pose_core.data.synthetic.crops import top_down_crops
from pose_core.data.synthetic.render import render_scene
from pose_core.data.synthetic.scene import SyntheticScene
from pose_core.data.synthetic.video import SyntheticVideo
from pose_core.keypoint_specs import KeypointSpec, get_keypoint_spec

__all__ = ["coco_categories", "write_crop_dataset", "write_dataset", "write_video_dataset"]


def coco_categories(spec: KeypointSpec) -> list[dict]:
    """COCO `categories` for a keypoint layout (person, names, 1-based skeleton)."""
    return [{"id": 1, "name": "person", "supercategory": "person",
             "keypoints": list(spec.names), "skeleton": spec.skeleton_1based}]


def write_dataset(
    out_dir: str | os.PathLike[str],
    num_images: int,
    seed: int,
    size_wh: Sequence[int] = (256, 256),
    keypoints: str = "coco",
    max_people: int | None = None,
    difficulty: str = "default",
    config: SyntheticSceneConfig | None = None,
    jpeg_quality: int = 92,
    progress: bool = False,
) -> pathlib.Path:
    """Write `num_images` random scenes as a COCO-format keypoint dataset.

    Writes `out_dir/images/%06d.jpg` and `out_dir/annotations.json`. Image i is seeded with
    `(seed, i)`. `config` (when given) overrides `size_wh`, `keypoints`, `difficulty`.
    CrowdPose images carry `crowdIndex`.

    Returns:
        The path of annotations.json.
    """
    _check_count("num_images", num_images)
    if config is None:
        config = _preset_config(size_wh, keypoints, max_people, difficulty)
    _check_quality(jpeg_quality)
    spec = config.spec

    def entries(i: int) -> Iterator[_Entry]:
        scene = render_scene(config, [int(seed), i])
        yield _scene_entry(scene, spec, {"width": config.width, "height": config.height})

    return _write_coco_dataset(
        out_dir, int(num_images), entries, spec,
        description=f"pose_core synthetic world ({spec.name}, seed {seed})",
        progress_desc="pose-synth", name_digits=6, jpeg_quality=jpeg_quality, progress=progress,
    )


def write_crop_dataset(
    out_dir: str | os.PathLike[str],
    num_images: int,
    seed: int,
    size_wh: Sequence[int] = (256, 256),
    keypoints: str = "coco",
    crop_wh: Sequence[int] = (192, 256),
    padding: float = 1.25,
    max_people: int | None = None,
    difficulty: str = "default",
    config: SyntheticSceneConfig | None = None,
    jpeg_quality: int = 92,
    progress: bool = False,
) -> pathlib.Path:
    """Top-down crop mode: one crop per person of `num_images` random scenes.

    Scene i is seeded with `(seed, i)` (the same scenes as `write_dataset`); every person with a
    labelled joint becomes one `crop_wh` image (`top_down_crops`) holding one annotation in crop
    pixels: keypoints (v=0 outside the crop), bbox of the person's visible silhouette, area
    scaled to the crop. Other people may show in a crop, unannotated, as in top-down training.
    Images carry `source_image` (scene index) and `person_id`. `config` (when given) overrides
    `size_wh`, `keypoints`, `max_people` and `difficulty`.
    """
    _check_count("num_images", num_images)
    crop_w, crop_h = _check_size(crop_wh)
    if not padding > 0:
        raise ValueError(f"padding must be > 0, got {padding}")
    _check_quality(jpeg_quality)
    if config is None:
        config = _preset_config(size_wh, keypoints, max_people, difficulty)
    spec = config.spec

    def entries(i: int) -> Iterator[_Entry]:
        scene = render_scene(config, [int(seed), i])
        for crop in top_down_crops(scene, (crop_w, crop_h), padding):
            scale = float(crop.affine[0, 0])
            x, y, bw, bh = (float(v) for v in crop.box)
            x0, y0 = x * scale + crop.affine[0, 2], y * scale + crop.affine[1, 2]
            person = int(np.flatnonzero(scene.ids == crop.person_id)[0])
            bbox = [round(x0, 2), round(y0, 2), round(bw * scale, 2), round(bh * scale, 2)]
            area = round(float(scene.areas[person]) * scale * scale, 2)
            fields = {"width": crop_w, "height": crop_h, "source_image": i,
                      "person_id": crop.person_id}
            yield _Entry(crop.image_bgr, fields, [_annotation(crop.keypoints, bbox, area)])

    return _write_coco_dataset(
        out_dir, int(num_images), entries, spec,
        description=f"pose_core synthetic top-down crops ({spec.name}, seed {seed})",
        progress_desc="pose-synth crops", name_digits=7, jpeg_quality=jpeg_quality,
        progress=progress,
    )


def write_video_dataset(
    out_dir: str | os.PathLike[str],
    num_frames: int,
    seed: int,
    size_wh: Sequence[int] = (640, 480),
    keypoints: str = "coco",
    num_people: int = 5,
    fps: float = 30.0,
    jpeg_quality: int = 92,
    progress: bool = False,
) -> pathlib.Path:
    """Write `num_frames` consecutive frames of a `SyntheticVideo` (COCO format plus
    `track_id` per annotation and `frame_id` / `vid_id` per image)."""
    _check_count("num_frames", num_frames)
    w, h = _check_size(size_wh)
    video = SyntheticVideo(w, h, num_people, fps, seed, keypoints)
    _check_quality(jpeg_quality)
    spec = get_keypoint_spec(keypoints)

    def entries(i: int) -> Iterator[_Entry]:
        fields = {"width": w, "height": h, "frame_id": i, "vid_id": 1}
        yield _scene_entry(video.frame(i), spec, fields, track=True)

    return _write_coco_dataset(
        out_dir, int(num_frames), entries, spec,
        description=f"pose_core synthetic video ({spec.name}, seed {seed}, {fps} fps)",
        progress_desc="pose-synth video", name_digits=6, jpeg_quality=jpeg_quality,
        progress=progress,
    )


# ----------------------------------------------------------------------------------------------
# The shared skeleton
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One image of a dataset.

    Attributes:
        image_bgr: (H, W, 3) uint8 pixels to write.
        fields: the image record after its `id` and `file_name` (`width`, `height`, extras),
            in the order they are written.
        annotations: the image's annotations without their `id` and `image_id`.
    """

    image_bgr: np.ndarray
    fields: dict
    annotations: list[dict]


def _write_coco_dataset(
    out_dir: str | os.PathLike[str],
    num_scenes: int,
    entries: Callable[[int], Iterable[_Entry]],
    spec: KeypointSpec,
    *,
    description: str,
    progress_desc: str,
    name_digits: int,
    jpeg_quality: int,
    progress: bool,
) -> pathlib.Path:
    """Write the entries of scenes 0..num_scenes-1 as `out_dir/images/<n>.jpg` (n counted from 0
    over all entries, `name_digits` digits) and `out_dir/annotations.json`; returns its path."""
    out = pathlib.Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images: list[dict] = []
    annotations: list[dict] = []
    bar = _progress(num_scenes, progress, progress_desc)
    try:
        for i in range(num_scenes):
            for entry in entries(i):
                image_id = len(images) + 1
                file_name = f"{image_id - 1:0{name_digits}d}.jpg"
                _imwrite(out / "images" / file_name, entry.image_bgr, jpeg_quality)
                images.append({"id": image_id, "file_name": file_name, **entry.fields})
                for ann in entry.annotations:
                    annotations.append({"id": len(annotations) + 1, "image_id": image_id, **ann})
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    path = out / "annotations.json"
    _write_json(path, {
        "info": {"description": description, "version": "1"},
        "licenses": [], "images": images, "annotations": annotations,
        "categories": coco_categories(spec),
    })
    return path


def _scene_entry(scene: SyntheticScene, spec: KeypointSpec, fields: dict,
                 track: bool = False) -> _Entry:
    """A whole scene as one image: every person with a labelled joint or a visible pixel;
    CrowdPose images carry `crowdIndex`, `track` adds each person's id as `track_id`."""
    if spec.name == "crowdpose":
        fields = {**fields, "crowdIndex": round(scene.crowd_index, 4)}
    anns = []
    for k in range(scene.num_people):
        kps = scene.keypoints[k]
        if int((kps[:, 2] > 0).sum()) == 0 and scene.areas[k] == 0:
            continue
        ann = _annotation(kps, [round(float(v), 2) for v in scene.boxes[k]],
                          float(scene.areas[k]))
        if track:
            ann["track_id"] = int(scene.ids[k])
        anns.append(ann)
    return _Entry(scene.image_bgr, fields, anns)


def _annotation(keypoints: np.ndarray, bbox: list[float], area: float) -> dict:
    """A person annotation without its ids; keypoints (J, 3) x, y, v, v = 0 for unlabelled."""
    flat: list[float | int] = []
    for x, y, v in keypoints:
        flat += [round(float(x), 2), round(float(y), 2), int(v)] if v > 0 else [0, 0, 0]
    return {"category_id": 1, "iscrowd": 0, "num_keypoints": int((keypoints[:, 2] > 0).sum()),
            "keypoints": flat, "bbox": bbox, "area": area}


def _preset_config(size_wh: Sequence[int], keypoints: str, max_people: int | None,
                   difficulty: str) -> SyntheticSceneConfig:
    """The `difficulty` preset at `size_wh` after checking the size and `max_people`."""
    w, h = _check_size(size_wh)
    if max_people is not None and not 0 <= int(max_people) <= MAX_PEOPLE_LIMIT:
        raise ValueError(f"max_people must be in [0, {MAX_PEOPLE_LIMIT}], got {max_people}")
    return difficulty_config(difficulty, w, h, keypoints, max_people)


def _check_count(name: str, value: int) -> None:
    if int(value) < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _check_quality(jpeg_quality: int) -> None:
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in [1, 100], got {jpeg_quality}")


def _check_size(size_wh: Sequence[int]) -> tuple[int, int]:
    if len(size_wh) != 2:
        raise ValueError(f"size must be (width, height), got {size_wh}")
    w, h = int(size_wh[0]), int(size_wh[1])
    if w < 16 or h < 16 or w > 8192 or h > 8192:
        raise ValueError(f"image size must be between 16 and 8192 pixels per side, got {w}x{h}")
    return w, h


def _write_json(path: pathlib.Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    os.replace(tmp, path)


def _progress(total: int, enabled: bool, desc: str):  # noqa: ANN202 - tqdm or a stub
    if enabled:
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit="img")
    return None


def _imwrite(path: pathlib.Path, image: np.ndarray, quality: int) -> None:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    path.write_bytes(data.tobytes())
