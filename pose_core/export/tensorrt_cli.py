"""`pose-export tensorrt`: the options of the engine builder (`tensorrt_builder.build_engine`).

Profiles: `--profile MIN:OPT:MAX` (each NxCxHxW) or `--profile NxCxHxW` (fixed), repeatable;
`--camera WxH --input-size S [--batch B]` adds the fixed profile of a camera's aspect ratio;
without either, one dynamic profile around the model's input size. INT8 on TensorRT 10:
`--calibration-images DIR` (the model's own pre-processing; `--calibration-count` images).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_tensorrt_parser", "run_tensorrt_command"]


def add_tensorrt_parser(commands: Any) -> None:
    """The `tensorrt` sub-command of `pose-export`."""
    from pose_core.export.tensorrt_builder import ENGINE_PRECISIONS

    parser = commands.add_parser("tensorrt", help="ONNX file -> TensorRT engine + metadata")
    parser.add_argument("--onnx", type=Path, required=True, help="file of `pose-export onnx`")
    parser.add_argument("--out", type=Path, required=True, help="engine file to write")
    parser.add_argument("--precision", choices=ENGINE_PRECISIONS, default="fp16")
    parser.add_argument("--profile", action="append", default=[],
                        help="MIN:OPT:MAX or a fixed NxCxHxW (repeatable)")
    parser.add_argument("--camera", default=None, help="camera frame WxH: adds its profile")
    parser.add_argument("--input-size", type=int, default=None,
                        help="network short side for --camera (default: the model's)")
    parser.add_argument("--batch", type=int, default=1, help="batch of the --camera profile")
    parser.add_argument("--workspace-mib", type=int, default=2048)
    parser.add_argument("--timing-cache", default=None, help="timing cache file (read/written)")
    parser.add_argument("--no-tags-fp32", action="store_true",
                        help="let the tag output run in the engine precision")
    parser.add_argument("--calibration-images", type=Path, default=None)
    parser.add_argument("--calibration-count", type=int, default=64)
    parser.add_argument("--calibration-cache", default=None)


def build_options_from_args(args: argparse.Namespace) -> Any:
    """`BuildOptions` of the parsed options (profiles, calibration batches)."""
    from pose_core.export.engine_metadata import ShapeProfile, camera_profile
    from pose_core.export.onnx_export import onnx_metadata
    from pose_core.export.tensorrt_builder import BuildOptions, calibration_batches
    from pose_core.inference.tensorrt_backend import default_profiles
    from pose_core.models import model_info

    metadata = onnx_metadata(args.onnx)
    info = model_info(metadata.model)
    profiles = [ShapeProfile.parse(text) for text in args.profile]
    input_size = args.input_size or min(info.input_size)
    if args.camera:
        width, _, height = args.camera.lower().partition("x")
        profiles.append(camera_profile((int(width), int(height)), input_size, args.batch,
                                       metadata.size_multiple))
    if not profiles:
        profiles = list(default_profiles(info.input_size, metadata.size_multiple))
    calibration: tuple = ()
    if args.calibration_images is not None:
        import cv2

        paths = sorted(args.calibration_images.glob("*.jpg"))[: args.calibration_count]
        images = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths]
        calibration = calibration_batches(images, metadata.model, input_size, 1)
    return BuildOptions(
        precision=args.precision, profiles=tuple(profiles), workspace_mib=args.workspace_mib,
        timing_cache=args.timing_cache, tags_fp32=not args.no_tags_fp32,
        calibration=calibration, calibration_cache=args.calibration_cache,
    )


def run_tensorrt_command(args: argparse.Namespace) -> int:
    from pose_core.export.tensorrt_builder import build_engine
    from pose_core.inference.tensorrt_backend import import_tensorrt

    options = build_options_from_args(args)
    metadata = build_engine(args.onnx, args.out, options, trt=import_tensorrt())
    print(f"wrote {args.out} and {args.out}.json: TensorRT {metadata.tensorrt_version}, "
          f"{metadata.gpu_name} (sm {metadata.compute_capability}), {metadata.precision}; "
          f"layer precisions per type: {metadata.layer_precisions}")
    return 0
