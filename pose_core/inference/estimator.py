"""`PoseEstimator`: BGR image -> `Poses` in image pixels, for any registered model.

The path reads in one direction and has no per-family branches:
preprocess (`codec.prepare`) -> backend (the network; the mirrored input too with flip test)
-> test-time augmentation (`codec.merge`, per pass) -> decoding and back-projection
(`codec.decode`). The codec is the one the model registry names (`ModelInfo.decoder`, built by
`pose_core.codecs.build_decoder`): associative embedding for HigherHRNet (HigherHRNet
`tools/valid.py`), top-down heatmaps for HRNet / DarkPose (HRNet `tools/test.py`).

Frames: input BGR uint8 (H, W, 3); the network sees RGB normalised with `ModelInfo.mean/std`;
output keypoints (P, J, 3) = x, y in original image pixels and the joint value.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from pose_core.codecs import build_decoder
from pose_core.codecs.base import Prepared, TestOptions
from pose_core.grouping import GroupingParams, TagSampler
from pose_core.inference.backends import InferenceBackend
from pose_core.default_model import DEFAULT_MODEL
from pose_core.inference.buffers import BufferPool
from pose_core.inference.thread_policy import DEFAULT_THREAD_POLICY, ThreadPolicy, torch_threads
from pose_core.inference.preprocess import check_image
from pose_core.inference.test_time_aug import mirrored_input, resized_like
from pose_core.keypoint_specs import KeypointSpec
from pose_core.structures import Poses

__all__ = ["PoseEstimator", "reduced_flip_supported"]

_GROUPING_NAMES = frozenset(f.name for f in dataclasses.fields(GroupingParams))


class PoseEstimator:
    """Multi-person pose estimation on images.

    Args:
        name: registered model name (`pose_core.models.MODEL_NAMES`); default: the shipped
            synthetic-world model `DEFAULT_MODEL` (which says once that it knows only the
            synthetic world).
        checkpoint: weights file; None loads the shipped weights for `DEFAULT_MODEL` and keeps
            random weights (with a warning) for any other name.
        device: torch device string.
        flip_test: average with the mirrored image (official default on).
        flip_scale: our option for bottom-up models without offset outputs: the mirrored pass
            runs on the input resized to this fraction (sides rounded to the model's input
            multiple) and its maps are resized back before the merge; 1.0 is the official
            flip test. The pose node's default (0.625): measured in docs/training_synthetic.md.
        scales: bottom-up test scales (must contain 1.0 when more than one); None: the
            model's own (`ModelInfo.test_scales`: single scale but for the shipped model).
        input_size: overrides the model's input size: an int (bottom-up short side, or a
            top-down width with the model's aspect) or (w, h).
        fp16: half precision (CUDA only).
        top_down_decoder: "quarter" (HRNet) or "dark" (DarkPose: corner-aligned crops, no flip
            shift, DARK decoding with `dark_kernel`).
        dark_kernel: DARK blur size.
        dark_refine: bottom-up only, our own addition (the official path has none): replace
            the quarter offset of every found joint by the DARK Taylor offset on the
            aggregated heatmap (x = pixel + DARK offset + 0.5, same frame as the official one);
            steps longer than one pixel (no concave peak) keep the quarter offset.
        oks_threshold: top-down OKS-NMS threshold.
        backend: "torch" (default), "onnxruntime" or "tensorrt" (built by
            `pose_core.inference.backend_factory.build_backend` for `name` and `checkpoint`;
            "onnxruntime" exports the model once into the ONNX cache and reuses the file), or
            a ready `InferenceBackend` object.
        backend_options: options of the named backend (`BackendOptions` or a dict of its
            fields: precision, channels_last, providers, thread counts, onnx_path, ...).
        grouping: bottom-up grouping options as one record (`GroupingParams`); the same
            fields may instead be given as keywords (not both).
        threads: CPU threads per stage (`ThreadPolicy`): `network_threads` /
            `network_inter_op_threads` size the onnxruntime session (unless `backend_options`
            sets them) or torch's pool during a torch forward; `grouping_threads` is torch's
            pool for everything else (pre-processing, test-time-augmentation merge, grouping).
            None: `DEFAULT_THREAD_POLICY` (measured: docs/benchmark_node.md); `ThreadPolicy()`
            leaves every library its own default.
        **options: `GroupingParams` fields (detection_threshold, tag_threshold, max_people,
            use_detection_val, ignore_too_much, adjust, refine, nms_kernel, joint_order) and
            the options of the model's own method (e.g. `dem_mode`); any other -> TypeError.
    """

    def __init__(
        self,
        name: str = DEFAULT_MODEL,
        checkpoint: str | Path | None = None,
        device: str = "cpu",
        flip_test: bool = True,
        scales: Sequence[float] | None = None,
        input_size: int | tuple[int, int] | None = None,
        fp16: bool = False,
        *,
        flip_scale: float = 1.0,
        top_down_decoder: Literal["quarter", "dark"] = "quarter",
        dark_kernel: int = 11,
        dark_refine: bool = False,
        oks_threshold: float = 0.9,
        backend: InferenceBackend | str | None = None,
        backend_options: Any = None,
        grouping: GroupingParams | None = None,
        threads: ThreadPolicy | None = None,
        **options: Any,
    ) -> None:
        from pose_core.models import model_info

        self.info = model_info(name)
        self.keypoint_spec: KeypointSpec = self.info.keypoints
        grouping_options = {k: v for k, v in options.items() if k in _GROUPING_NAMES}
        test_options = TestOptions(
            flip_test=bool(flip_test),
            flip_scale=float(flip_scale),
            scales=tuple(self.info.test_scales if scales is None else scales),
            top_down_decoder=top_down_decoder,
            dark_kernel=int(dark_kernel),
            dark_refine=bool(dark_refine),
            oks_threshold=float(oks_threshold),
            grouping=_grouping_params(grouping, grouping_options),
            method_options=tuple(
                (k, v) for k, v in options.items() if k not in _GROUPING_NAMES
            ),
        )
        self.codec = build_decoder(self.info, input_size, test_options)
        self.options = test_options
        self.flip_test = test_options.flip_test
        self.scales = test_options.scales
        self.input_wh: tuple[int, int] = self.codec.input_wh
        self.last_timings: dict[str, float] = {"preprocess": 0.0, "network": 0.0, "grouping": 0.0}
        self.threads = DEFAULT_THREAD_POLICY if threads is None else threads
        if backend is None or isinstance(backend, str):
            backend = _named_backend(backend or "torch", name, checkpoint, device, fp16,
                                     _with_thread_counts(backend_options, self.threads))
        if getattr(backend, "flip_folded", False) and not self.flip_test:
            raise ValueError("the backend's graph holds the flip test; use flip_test=True or "
                             "a graph exported without --flip-folded")
        self.flip_scale = test_options.flip_scale
        if self.flip_scale != 1.0:
            _check_reduced_flip(self.info, backend)
        self.backend = backend
        self.device = backend.device
        # The large maps of the decoding are reused from image to image (no page faults for
        # them; see BufferPool); one pool per calling thread, so threads never share buffers.
        self._pools = threading.local()

    @property
    def grouping(self) -> GroupingParams:
        """The bottom-up grouping options in use (joint order resolved)."""
        return getattr(self.codec, "grouping", self.options.grouping)

    # ----------------------------------------------------------------------------------------
    def __call__(self, image_bgr: np.ndarray, boxes: np.ndarray | None = None) -> Poses:
        """Poses of one BGR uint8 image (keypoints in image pixels).

        Args:
            image_bgr: (H, W, 3) uint8, BGR.
            boxes: top-down models only: (B, 4) x, y, w, h (optionally a 5th column, the box
                score); None uses the whole image as one box.
        """
        return self.predict_batch([image_bgr], None if boxes is None else [boxes])[0]

    def predict_batch(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[np.ndarray | None] | None = None,
        batch_size: int = 8,
    ) -> list[Poses]:
        """Poses for several images, in order; `last_timings` holds the sums over the batch.

        Images whose network inputs have the same size at every pass (e.g. frames of one
        camera; every top-down crop) share one forward per pass, flip test included (2 x the
        rows in one forward), with up to `batch_size` rows per forward (a bottom-up image is one
        row, a top-down image one row per box; an image with more boxes runs alone, whole);
        decoding runs per image.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if boxes is not None and len(boxes) != len(images):
            raise ValueError(f"{len(images)} images but {len(boxes)} box arrays")
        for image in images:
            check_image(image)
        with torch_threads(self.threads.grouping_threads):
            return self._predict_batch(images, boxes, batch_size)

    def _predict_batch(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[np.ndarray | None] | None,
        batch_size: int,
    ) -> list[Poses]:
        t0 = time.perf_counter()
        prepared = [
            self.codec.prepare(image, None if boxes is None else boxes[i])
            for i, image in enumerate(images)
        ]
        timings = {"preprocess": time.perf_counter() - t0, "network": 0.0, "grouping": 0.0}
        results: list[Poses | None] = [p.result for p in prepared]
        groups: dict[tuple, list[int]] = {}
        for i, item in enumerate(prepared):
            if item.result is None:
                groups.setdefault(item.batch_key(), []).append(i)
        for members in groups.values():
            for chunk in _chunks_of_rows(members, [p.rows for p in prepared], batch_size):
                self._run_chunk([prepared[i] for i in chunk], chunk, results, timings)
        self.last_timings = timings
        return [poses for poses in results if poses is not None]

    def _run_chunk(
        self,
        chunk: list[Prepared],
        indices: list[int],
        results: list[Poses | None],
        timings: dict[str, float],
    ) -> None:
        """One forward per pass for the images of `chunk`, then each image's decoding."""
        started = time.perf_counter()
        network = 0.0
        pool = self._pool()
        with pool.frame():
            maps = []
            for k in range(len(chunk[0].inputs)):
                batch = torch.cat([item.inputs[k] for item in chunk])
                start = time.perf_counter()
                outputs, flipped = self._run(batch)
                self._sync()
                network += time.perf_counter() - start
                maps.append(self.codec.merge(outputs, flipped, k, pool))
            row = 0
            for item, i in zip(chunk, indices):
                rows = slice(row, row + item.rows)
                results[i] = self.codec.decode(maps, item, rows, pool)
                row = rows.stop
        timings["network"] += network
        timings["grouping"] += time.perf_counter() - started - network

    def _run(self, batch: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        if getattr(self.backend, "uses_torch_threads", False):
            with torch_threads(self.threads.network_threads):
                return self._run_backend(batch)
        return self._run_backend(batch)

    def _run_backend(
        self, batch: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        if self.flip_test:
            if getattr(self.backend, "flip_folded", False):
                outputs = self.backend(batch)  # the graph mirrors the batch itself
            elif self.flip_scale != 1.0:
                plain = list(self.backend(batch))
                mirrored = self.backend(
                    mirrored_input(batch, self.flip_scale, int(self.info.input_multiple)))
                return plain, resized_like(mirrored, plain)
            else:
                outputs = self.backend(torch.cat((batch, torch.flip(batch, dims=[3]))))
            n = batch.shape[0]
            return [o[:n] for o in outputs], [o[n:] for o in outputs]
        return list(self.backend(batch)), None

    def _pool(self) -> BufferPool:
        pool = getattr(self._pools, "pool", None)
        if pool is None:
            pool = self._pools.pool = BufferPool()
        return pool

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    # ---------------------------------------------------------------- bottom-up diagnostics
    def _bottom_up_codec(self) -> Any:
        if not hasattr(self.codec, "decode_maps"):
            raise ValueError(f"{self.info.name} is top-down: it has no bottom-up maps")
        return self.codec

    def bottom_up_maps(self, image_bgr: np.ndarray) -> tuple[torch.Tensor, TagSampler]:
        """What the grouping of one image sees: the aggregated heatmaps (J, H, W) at the network
        input size and the tag sampler on the same grid (flip test and scales as configured).

        For diagnostics and training reports; `__call__` is the estimator.
        """
        check_image(image_bgr)
        return self._bottom_up_codec().maps(image_bgr, self._run)

    def decode_bottom_up(
        self,
        maps: Sequence[Any],
        base_size_wh: tuple[int, int],
        center: Sequence[float],
        scale: Sequence[float],
        index: int = 0,
    ) -> Poses:
        """Aggregated maps -> grouping -> image pixels (used by the tests and the benchmark);
        `index` picks the image within batched maps."""
        return self._bottom_up_codec().decode_maps(
            maps, base_size_wh, center, scale, index, self._pool()
        )


def _chunks_of_rows(
    members: list[int], rows: list[int], batch_size: int
) -> list[list[int]]:
    """Consecutive images whose rows add up to at most `batch_size` (at least one image)."""
    chunks: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i in members:
        if current and total + rows[i] > batch_size:
            chunks.append(current)
            current, total = [], 0
        current.append(i)
        total += rows[i]
    if current:
        chunks.append(current)
    return chunks


def reduced_flip_supported(info: Any) -> bool:
    """Whether `flip_scale` < 1 suits the model: a reduced mirrored pass resizes its maps, so
    only bottom-up models whose outputs all resize (heatmaps, tags; not offsets) take it."""
    return info.family == "higherhrnet" and not info.head_layout.extras


def _check_reduced_flip(info: Any, backend: Any) -> None:
    """`flip_scale` < 1: a model that takes it (`reduced_flip_supported`), run unfolded."""
    if not reduced_flip_supported(info):
        raise ValueError(
            f"flip_scale < 1 needs a bottom-up model whose outputs are heatmaps and tags only; "
            f"{info.name} ({info.decoder}) has other outputs: use flip_scale=1.0")
    if getattr(backend, "flip_folded", False):
        raise ValueError("the backend's graph holds the full-size flip test; flip_scale < 1 "
                         "needs a graph exported without --flip-folded")


def _named_backend(
    backend: str, name: str, checkpoint: str | Path | None, device: str, fp16: bool,
    options: Any,
) -> InferenceBackend:
    """`build_backend` with `fp16=True` meaning precision fp16."""
    from pose_core.inference.backend_factory import BackendOptions, build_backend

    if not isinstance(options, BackendOptions):
        options = BackendOptions.from_mapping(options)
    if fp16:
        options = dataclasses.replace(options, precision="fp16")
    return build_backend(backend, name, checkpoint, device, options)


def _with_thread_counts(options: Any, threads: ThreadPolicy) -> Any:
    """Backend options with the policy's onnxruntime thread counts where they set none."""
    from pose_core.inference.backend_factory import BackendOptions

    if not isinstance(options, BackendOptions):
        options = BackendOptions.from_mapping(options)
    changes = {}
    if options.intra_op_threads is None and threads.network_threads:
        changes["intra_op_threads"] = threads.network_threads
    if options.inter_op_threads is None and threads.network_inter_op_threads:
        changes["inter_op_threads"] = threads.network_inter_op_threads
    return dataclasses.replace(options, **changes) if changes else options


def _grouping_params(
    grouping: GroupingParams | None, options: dict[str, Any]
) -> GroupingParams:
    """One `GroupingParams` from the record or the keyword fields."""
    if grouping is not None:
        if options:
            raise TypeError("give the grouping options as `grouping=` or as keywords, not both")
        return grouping
    if options.get("joint_order") is not None:
        options = {**options, "joint_order": tuple(options["joint_order"])}
    return GroupingParams(**options)
