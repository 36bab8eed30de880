"""Double Embedding (DEM): the test-time decoder (and, in `double_embedding_targets`, targets).

Decoding follows the released test path of `plyplyply/pytorch-DEM2` @ 06f188d (`tools/valid.py`
with `lib/core/inference.py::get_multi_stage_outputs` / `aggregate_results`, PROJECT2IMAGE on),
written anew, as measured by the parity fixtures (shared/reference/parity/README.md §5.3):

- inputs: HigherHRNet's `resize_align_multi_scale` per scale, largest scale first
  (`inference.preprocess.bottom_up_input`, shared with the AE codec);
- per pass, at the stride-2 size: heatmaps = the stride-2 heatmaps only (the stride-4 ones are
  not used); offsets = (bilinear-up(offsets /4) + offsets /2) / 2; tags = bilinear-up(tags /4);
- flip: the mirrored pass's maps mirrored back, heatmaps and tags reordered by the flip index
  (centre last, fixed), offsets by the joint blocks of the flip index with dx negated when
  combined: heatmaps (n + f) / 2, offsets even (dy) channels (n + f) / 2, odd (dx) (n - f) / 2;
  tags stacked (normal, flip);
- every map projected (bilinear, align_corners False) to the scale-1.0 input size; heatmaps and
  offsets summed over scales and divided by their number; tags from scale 1.0 only;
- grouping `grouping.double_embedding` (mode "release" or "paper"), then HigherHRNet's
  `get_final_preds` with the centre / scale of the smallest scale.

Paper mode also divides each scale's offsets by its scale factor before the average: a network
fed the image at scale s sees displacements s times longer (in its own input pixels), while the
release averages them as if all were at scale 1.

Frames: `prepare` takes BGR uint8 (H, W, 3); maps are (J+1, H, W) at the scale-1.0 input size;
`decode` returns `Poses` (J joints, no centre) in image pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pose_core.codecs.associative_embedding import AssociativeEmbeddingDecoder
from pose_core.codecs.base import Prepared, TestOptions, square_input_side
from pose_core.geometry import back_project_centre_aligned
from pose_core.grouping import GroupingParams
from pose_core.grouping.double_embedding import (
    DEM_MODES,
    DemGroupingResult,
    dem_mode_settings,
    parse_double_embedding,
)
from pose_core.inference.buffers import BufferPool
from pose_core.keypoint_specs import KeypointSpec
from pose_core.models.double_embedding import dem_partition
from pose_core.models.heads import HeadLayout
from pose_core.numerics import all_finite
from pose_core.structures import Poses

__all__ = ["DemPassMaps", "DoubleEmbeddingDecoder", "DEM_METHOD_OPTIONS"]

DEM_METHOD_OPTIONS = ("dem_mode", "dem_mrm")


@dataclass(frozen=True)
class DemPassMaps:
    """One scale pass at the stride-2 size (N images): normal and mirrored-back maps kept apart
    (the release projects each to base size before combining them).

    Attributes:
        scale_factor: the pass's scale.
        heatmaps / flip_heatmaps: (N, J+1, h, w) (flip None without flip test).
        offsets / flip_offsets: (N, C, h, w), flip channels already permuted (dx not negated).
        tags / flip_tags: (N, J+1, h, w).
    """

    scale_factor: float
    heatmaps: torch.Tensor
    offsets: torch.Tensor
    tags: torch.Tensor
    flip_heatmaps: torch.Tensor | None = None
    flip_offsets: torch.Tensor | None = None
    flip_tags: torch.Tensor | None = None


def _up(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=tuple(size), mode="bilinear", align_corners=False)


class DoubleEmbeddingDecoder(AssociativeEmbeddingDecoder):
    """DEM: HigherHRNet-style inputs, the release's flip / scale aggregation, DEM grouping.

    Args (beyond `AssociativeEmbeddingDecoder`'s):
        dem_mode: "paper" (default) or "release".
        dem_mrm: force MRM on / off (None: the mode's choice).
    """

    def __init__(
        self,
        head: HeadLayout,
        keypoints: KeypointSpec,
        input_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        flip_test: bool = True,
        scales: Sequence[float] = (1.0,),
        grouping: GroupingParams | None = None,
        dem_mode: str = "paper",
        dem_mrm: bool | None = None,
        sigma: float = 2.0,
        max_people: int = 30,
    ) -> None:
        super().__init__(head, keypoints, input_size, mean, std, flip_test=flip_test,
                         scales=scales, grouping=grouping, sigma=sigma, max_people=max_people)
        self.partition = dem_partition(keypoints)
        self.mode = dem_mode_settings(dem_mode, dem_mrm)
        self.flip_index = tuple(keypoints.flip_index) + (keypoints.num_keypoints,)
        self.offset_flip_index = self.partition.offset_flip_index(tuple(keypoints.flip_index))

    @classmethod
    def for_model(
        cls, info: Any, input_size: int | tuple[int, int] | None, options: TestOptions
    ) -> DoubleEmbeddingDecoder:
        """The decoder of a registered DEM model (options `dem_mode`, `dem_mrm`)."""
        options.check_method_options(DEM_METHOD_OPTIONS, "double embedding")
        side = square_input_side(info.input_size[0], input_size)
        mode = options.method_option("dem_mode", "paper")
        if mode not in DEM_MODES:
            raise ValueError(f"dem_mode must be one of {DEM_MODES}, got {mode!r}")
        return cls(
            info.head_layout, info.keypoints, side, info.mean, info.std,
            flip_test=options.flip_test, scales=options.scales, grouping=options.grouping,
            dem_mode=mode, dem_mrm=options.method_option("dem_mrm", None),
        )

    # ------------------------------------------------------------------------------ merge
    def _pass_maps(
        self, outputs: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Heatmaps, offsets and tags of one pass at the stride-2 size."""
        head = self.head
        offsets_s4 = head.extra("offsets_s4").take(outputs)
        offsets_s2 = head.extra("offsets_s2").take(outputs)
        size = offsets_s2.shape[-2:]
        offsets = (_up(offsets_s4, size) + offsets_s2) / 2
        heatmaps = head.heatmap_maps(outputs, len(head.heatmaps) - 1)
        assert head.tags is not None
        tags = _up(head.tags.take(outputs), size)
        return heatmaps, offsets, tags

    def merge(
        self,
        outputs: Sequence[torch.Tensor],
        flipped: Sequence[torch.Tensor] | None,
        pass_index: int,
        pool: BufferPool | None,
    ) -> DemPassMaps:
        scale = self.pass_scales[pass_index]
        heatmaps, offsets, tags = self._pass_maps(outputs)
        if flipped is None:
            return DemPassMaps(scale, heatmaps, offsets, tags)
        flip_heatmaps, flip_offsets, flip_tags = self._pass_maps(flipped)
        joints = torch.as_tensor(self.flip_index, device=heatmaps.device)
        blocks = torch.as_tensor(self.offset_flip_index, device=heatmaps.device)

        def back(maps: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            return torch.flip(maps, [3]).index_select(1, index)

        return DemPassMaps(scale, heatmaps, offsets, tags, back(flip_heatmaps, joints),
                           back(flip_offsets, blocks), back(flip_tags, joints))

    # ------------------------------------------------------------------------------ decode
    def aggregate(
        self, maps: Sequence[DemPassMaps], base_size_wh: tuple[int, int], index: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Heatmaps (J+1, H, W), tags (J+1, H, W, L) and offsets (C, H, W) of image `index`
        at base size (the release's `aggregate_results` order)."""
        size = (int(base_size_wh[1]), int(base_size_wh[0]))
        rows = slice(index, index + 1)
        total_heatmaps: torch.Tensor | None = None
        total_offsets: torch.Tensor | None = None
        tags: list[torch.Tensor] = []
        dx = torch.zeros(self.partition.num_offsets, dtype=torch.bool)
        dx[1::2] = True
        for scale_maps in maps:
            heatmaps = _up(scale_maps.heatmaps[rows], size)
            offsets = _up(scale_maps.offsets[rows], size)
            if len(maps) == 1 or scale_maps.scale_factor == 1.0:
                tags.append(_up(scale_maps.tags[rows], size))
            if scale_maps.flip_heatmaps is not None:
                assert scale_maps.flip_offsets is not None and scale_maps.flip_tags is not None
                heatmaps = (heatmaps + _up(scale_maps.flip_heatmaps[rows], size)) / 2.0
                flip_offsets = _up(scale_maps.flip_offsets[rows], size)
                sign = torch.where(dx.to(offsets.device), -1.0, 1.0)[None, :, None, None]
                offsets = (offsets + sign * flip_offsets) / 2.0
                if len(maps) == 1 or scale_maps.scale_factor == 1.0:
                    tags.append(_up(scale_maps.flip_tags[rows], size))
            if self.mode.offsets_per_scale:  # paper: a scale-s pass sees s x displacements
                offsets = offsets / scale_maps.scale_factor
            total_heatmaps = heatmaps if total_heatmaps is None else total_heatmaps + heatmaps
            total_offsets = offsets if total_offsets is None else total_offsets + offsets
        assert total_heatmaps is not None and total_offsets is not None
        count = float(len(maps))
        return ((total_heatmaps / count)[0], torch.stack(tags, dim=-1)[0],
                (total_offsets / count)[0])

    def decode(
        self, maps: Sequence[Any], prepared: Prepared, rows: slice, pool: BufferPool | None
    ) -> Poses:
        frame = prepared.frame
        return self.decode_maps(maps, frame.base_size_wh, frame.center, frame.scale, rows.start)

    def decode_maps(
        self,
        maps: Sequence[DemPassMaps],
        base_size_wh: tuple[int, int],
        center: Sequence[float],
        scale: Sequence[float],
        index: int = 0,
        pool: BufferPool | None = None,
    ) -> Poses:
        """Aggregated maps of image `index` -> DEM grouping -> image pixels."""
        result = self.group_maps(*self.aggregate(maps, base_size_wh, index))
        keypoints = result.grouped[:, :, :3].astype(np.float64)
        if len(keypoints):
            keypoints[:, :, :2] = back_project_centre_aligned(
                keypoints[:, :, :2], np.asarray(center), np.asarray(scale), base_size_wh
            )
        return Poses(keypoints.astype(np.float32), result.scores)

    def group_maps(
        self, heatmaps: torch.Tensor, tags: torch.Tensor, offsets: torch.Tensor
    ) -> DemGroupingResult:
        """The grouping on aggregated maps (map pixels)."""
        if not all_finite(heatmaps):
            raise ValueError("the network produced NaN or infinite heatmaps")
        return parse_double_embedding(heatmaps, tags, offsets, self.grouping, self.mode)

    def maps(self, image_bgr: np.ndarray, run: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Diagnostics: the aggregated heatmaps (J+1, H, W) and tags (J+1, H, W, L) of one
        image (`run(batch)` gives the outputs and the mirrored pass's, or None)."""
        prepared = self.prepare(image_bgr, None)
        merged = [self.merge(*run(batch), k, None) for k, batch in enumerate(prepared.inputs)]
        heatmaps, tags, _ = self.aggregate(merged, prepared.frame.base_size_wh)
        return heatmaps, tags
