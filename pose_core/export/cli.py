"""`pose-export`: `pose-export onnx` (model + checkpoint -> checked ONNX file) and
`pose-export tensorrt` (ONNX file -> TensorRT engine + metadata; needs TensorRT installed).

Examples:
    pose-export onnx --model higherhrnet_w32_512_coco --checkpoint w32.pth --out w32.onnx
    pose-export onnx --model higherhrnet_w32_512_coco --checkpoint w32.pth --out w32_flip.onnx \
        --flip-folded
    pose-export onnx --model higherhrnet_w32_512_coco --checkpoint w32.pth --out w32_int8.onnx \
        --precision int8 --calibration-images frames/
    pose-export tensorrt --onnx w32.onnx --out w32_fp16.engine --precision fp16 \
        --min-shape 1x3x256x256 --opt-shape 2x3x512x512 --max-shape 2x3x768x768
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]


def _size(text: str) -> tuple[int, int]:
    """"W" or "WxH" -> (w, h)."""
    parts = text.lower().split("x")
    if len(parts) == 1:
        return int(parts[0]), int(parts[0])
    if len(parts) == 2:
        return int(parts[0]), int(parts[1])
    raise argparse.ArgumentTypeError(f"size {text!r} is not W or WxH")


def build_parser() -> argparse.ArgumentParser:
    from pose_core.export.onnx_export import DEFAULT_OPSET

    parser = argparse.ArgumentParser(prog="pose-export", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    onnx = commands.add_parser("onnx", help="model + checkpoint -> checked ONNX file")
    onnx.add_argument("--model", required=True, help="registered model name")
    onnx.add_argument("--checkpoint", type=Path, default=None,
                      help="weights (default: the shipped weights of the default model)")
    onnx.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    onnx.add_argument("--flip-folded", action="store_true",
                      help="put the flip test into the graph (outputs of 2N rows)")
    onnx.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    onnx.add_argument("--check-size", type=_size, nargs="+", default=None,
                      help="input sizes (W or WxH) of the ONNX Runtime check")
    onnx.add_argument("--atol", type=float, default=1e-4)
    onnx.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                      help="int8: statically quantized for onnxruntime on the CPU "
                      "(pose_core.export.onnx_int8)")
    onnx.add_argument("--calibration-images", type=Path, default=None,
                      help="int8: a folder of frames like the camera's (.jpg/.png) to observe "
                      "activation ranges on; default: 48 synthetic-world frames (fits the "
                      "shipped model only)")
    from pose_core.export.tensorrt_cli import add_tensorrt_parser

    add_tensorrt_parser(commands)
    return parser


def _export_onnx(args: argparse.Namespace) -> int:
    from pose_core.export.onnx_export import export_onnx

    checkpoint = args.checkpoint
    if checkpoint is None:
        from pose_core.default_model import DEFAULT_MODEL, default_checkpoint_path

        if args.model != DEFAULT_MODEL:
            print(f"pose-export: --checkpoint is needed for {args.model}", file=sys.stderr)
            return 2
        checkpoint = default_checkpoint_path()
    if args.precision == "fp32":
        if args.calibration_images is not None:
            print("pose-export: --calibration-images is for --precision int8", file=sys.stderr)
            return 2
        return _report(export_onnx(args.model, checkpoint, args.out,
                                   flip_folded=args.flip_folded, opset=args.opset,
                                   check_sizes_wh=args.check_size, atol=args.atol), args)
    import tempfile

    from pose_core.export.onnx_int8 import (
        calibration_from_images,
        quantize_int8,
        synthetic_calibration,
    )
    from pose_core.models import model_info

    info = model_info(args.model)
    if args.calibration_images is None:
        batches, name = synthetic_calibration(info), "synthetic world, 48 frames 640x480"
    else:
        paths = sorted(p for p in Path(args.calibration_images).iterdir()
                       if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        batches, name = calibration_from_images(info, paths), f"{len(paths)} user frames"
    with tempfile.TemporaryDirectory() as folder:
        fp32 = export_onnx(args.model, checkpoint, Path(folder) / "fp32.onnx",
                           flip_folded=args.flip_folded, opset=args.opset,
                           check_sizes_wh=args.check_size, atol=args.atol)
        _report(fp32, args)
        quantize_int8(fp32.path, args.out, batches, calibration_name=name)
    print(f"wrote {args.out} (int8, activation ranges from {name})")
    return 0


def _report(result, args: argparse.Namespace) -> int:  # noqa: ANN001 - an ExportResult
    sizes = ", ".join(f"{w}x{h}" for w, h in result.checked_sizes_wh)
    verb = "wrote" if args.precision == "fp32" else "exported (fp32, to quantize)"
    print(f"{verb} {result.path} (opset {args.opset}, flip folded: {args.flip_folded}); "
          f"ONNX Runtime vs PyTorch at {sizes}: max |diff| {result.max_abs_error:.3g}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "onnx":
            return _export_onnx(args)
        from pose_core.export.tensorrt_cli import run_tensorrt_command

        return run_tensorrt_command(args)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as error:
        print(f"pose-export: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
