"""What an exported network is, as flat text: the metadata stored in ONNX files and engine files.

`OnnxMetadata` is written into the ONNX file's `metadata_props` (string -> string) by
`pose_core.export.onnx_export.export_onnx` and read back by the ONNX Runtime and TensorRT
backends, which check it against the model they are asked to run (`check_matches`): a file of
another model, another keypoint set, another head layout or another checkpoint is refused with
a message that says how to export again.

Network input (every exported model): (N, 3, H, W) float32, RGB, scaled to [0, 1] then
normalised with `mean` / `std` (NCHW). Outputs: as `head` describes (`HeadLayout`); with the
flip test folded into the graph the outputs have 2N rows, the N mirrored passes after the N
normal ones (as `PoseEstimator` concatenates them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pose_core.models import ModelInfo
from pose_core.models.heads import Channels, HeadLayout

__all__ = [
    "INPUT_LAYOUT",
    "METADATA_VERSION",
    "MetadataMismatch",
    "OnnxMetadata",
    "file_sha256",
    "head_layout_from_json",
    "head_layout_to_json",
]

METADATA_VERSION = "1"
INPUT_LAYOUT = "NCHW float32 RGB, [0,1] then (x - mean) / std"


class MetadataMismatch(ValueError):
    """An exported file does not describe what it is asked to run (the message says why)."""


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def head_layout_to_json(head: HeadLayout) -> str:
    """`HeadLayout` as JSON text (every field, channel blocks as [output, start, count])."""

    def block(channels: Channels | None) -> list[int] | None:
        return None if channels is None else [channels.output, channels.start, channels.count]

    return json.dumps({
        "num_joints": head.num_joints,
        "heatmaps": [block(b) for b in head.heatmaps],
        "tags": block(head.tags),
        "tag_dim": head.tag_dim,
        "extras": [[name, block(b)] for name, b in head.extras],
    }, sort_keys=True)


def head_layout_from_json(text: str) -> HeadLayout:
    """The inverse of `head_layout_to_json`."""
    data = json.loads(text)
    return HeadLayout(
        num_joints=int(data["num_joints"]),
        heatmaps=tuple(Channels(*b) for b in data["heatmaps"]),
        tags=None if data["tags"] is None else Channels(*data["tags"]),
        tag_dim=int(data["tag_dim"]),
        extras=tuple((name, Channels(*b)) for name, b in data["extras"]),
    )


@dataclass(frozen=True)
class OnnxMetadata:
    """The description stored with an exported network.

    Attributes:
        model: registered model name.
        checkpoint_sha256: SHA-256 of the checkpoint file the weights came from.
        keypoint_set: `KeypointSpec.name` ("coco", "crowdpose").
        keypoint_names: joint names in channel order.
        head: `head_layout_to_json` of the model's `HeadLayout`.
        mean / std: RGB normalisation on the [0, 1] scale.
        flip_folded: the graph runs the image and its mirror (outputs have 2N rows).
        opset: ONNX opset of the graph.
        input_layout: `INPUT_LAYOUT`.
        size_multiple: height and width of the input must be multiples of this.
        version: `METADATA_VERSION`.
    """

    model: str
    checkpoint_sha256: str
    keypoint_set: str
    keypoint_names: tuple[str, ...]
    head: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    flip_folded: bool
    opset: int
    size_multiple: int
    input_layout: str = INPUT_LAYOUT
    version: str = METADATA_VERSION

    @classmethod
    def for_model(cls, info: ModelInfo, checkpoint_sha256: str, *, flip_folded: bool,
                  opset: int, size_multiple: int) -> OnnxMetadata:
        return cls(
            model=info.name,
            checkpoint_sha256=checkpoint_sha256,
            keypoint_set=info.keypoints.name,
            keypoint_names=tuple(info.keypoints.names),
            head=head_layout_to_json(info.head_layout),
            mean=tuple(float(v) for v in info.mean),  # type: ignore[arg-type]
            std=tuple(float(v) for v in info.std),  # type: ignore[arg-type]
            flip_folded=bool(flip_folded),
            opset=int(opset),
            size_multiple=int(size_multiple),
        )

    @property
    def head_layout(self) -> HeadLayout:
        return head_layout_from_json(self.head)

    def to_props(self) -> dict[str, str]:
        """Flat string -> string form (ONNX `metadata_props`), keys prefixed `pose_ros.`."""
        props: dict[str, str] = {}
        for field in dataclasses.fields(self):
            value: Any = getattr(self, field.name)
            props[f"pose_ros.{field.name}"] = value if isinstance(value, str) else json.dumps(
                list(value) if isinstance(value, tuple) else value
            )
        return props

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: str = "file") -> OnnxMetadata:
        """Parse `to_props` output; raises MetadataMismatch when the file carries none."""
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            key = f"pose_ros.{field.name}"
            if key not in props:
                raise MetadataMismatch(
                    f"{source} has no {key!r} metadata: it was not written by `pose-export "
                    "onnx`; export it again with `pose-export onnx --model NAME --checkpoint "
                    "FILE --out FILE`"
                )
            text = props[key]
            if field.type == "str":
                values[field.name] = text
            else:
                value = json.loads(text)
                values[field.name] = tuple(value) if isinstance(value, list) else value
        return cls(**values)

    def check_matches(self, info: ModelInfo, checkpoint_sha256: str | None,
                      source: str = "file") -> None:
        """Raise MetadataMismatch naming every field where this file differs from `info`.

        `checkpoint_sha256=None` skips the checkpoint comparison (a file given on its own).
        """
        if self.version != METADATA_VERSION:
            raise MetadataMismatch(
                f"{source}: metadata version {self.version!r}, this pose_core reads "
                f"{METADATA_VERSION!r}; export it again with `pose-export onnx`"
            )
        expected = OnnxMetadata.for_model(
            info, checkpoint_sha256 or self.checkpoint_sha256, flip_folded=self.flip_folded,
            opset=self.opset, size_multiple=self.size_multiple,
        )
        problems = [
            f"{field.name}: file has {getattr(self, field.name)!r}, expected "
            f"{getattr(expected, field.name)!r}"
            for field in dataclasses.fields(self)
            if getattr(self, field.name) != getattr(expected, field.name)
        ]
        if problems:
            raise MetadataMismatch(
                f"{source} does not hold model {info.name!r} with the requested weights ("
                + "; ".join(problems)
                + f"); export it again: pose-export onnx --model {info.name} --checkpoint FILE"
                " --out FILE"
            )


def read_json_file(path: Path) -> dict[str, Any]:
    """A JSON object from a file (ValueError naming the file when it is not one)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read metadata {path}: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"metadata {path} is not a JSON object")
    return data
