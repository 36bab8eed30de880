"""What a network's outputs hold, as data: `HeadLayout` names the channel blocks of each output.

Every consumer of raw network outputs (test-time augmentation, losses, export, decoders) reads
them through a `HeadLayout` instead of slicing channels by convention.

- HigherHRNet (associative embedding, HigherHRNet `lib/models/pose_higher_hrnet.py`):
  outputs `[(N, 2J, H/4, W/4), (N, J, H/2, W/2)]`; heatmaps are channels [0, J) of both outputs,
  tags (one value per joint) are channels [J, 2J) of output 0.
- Top-down HRNet (`lib/models/pose_hrnet.py`): one output `(N, J, H/4, W/4)` of heatmaps.
- Tags of any dimension D per joint: `tag_dim = D`, channels `j * D + d` (joint-major, the
  Coupled Embedding release's layout; D = 1 is the HigherHRNet layout).
- Further maps (a person-centre heatmap, offset fields) are named `extras`.

Shapes: channel blocks are read from (N, C, h, w) tensors; `tags` returns (N, J, D, h, w).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

__all__ = ["Channels", "HeadLayout"]


@dataclass(frozen=True)
class Channels:
    """A block of `count` channels starting at `start` in output number `output`."""

    output: int
    start: int
    count: int

    def __post_init__(self) -> None:
        if self.output < 0 or self.start < 0 or self.count <= 0:
            raise ValueError(f"invalid channel block {self}")

    @property
    def stop(self) -> int:
        return self.start + self.count

    def take(self, outputs: Sequence[Tensor]) -> Tensor:
        """The block as an (N, count, h, w) view of its output."""
        return outputs[self.output][:, self.start : self.stop]


@dataclass(frozen=True)
class HeadLayout:
    """The named channel blocks of a network's outputs.

    Attributes:
        num_joints: J.
        heatmaps: one block of J heatmap channels per resolution, in output order (the last is
            the finest: test-time augmentation brings every other block to its size).
        tags: the block of J * tag_dim tag channels (joint-major), or None.
        tag_dim: tag values per joint (0 without tags).
        extras: further named blocks (e.g. ("centre", Channels(...))).
    """

    num_joints: int
    heatmaps: tuple[Channels, ...]
    tags: Channels | None = None
    tag_dim: int = 0
    extras: tuple[tuple[str, Channels], ...] = ()

    def __post_init__(self) -> None:
        if not self.heatmaps:
            raise ValueError("a head has at least one heatmap block")
        for block in self.heatmaps:
            if block.count != self.num_joints:
                raise ValueError(f"heatmap block {block} must hold {self.num_joints} channels")
        if (self.tags is None) != (self.tag_dim == 0):
            raise ValueError("tags and tag_dim go together (tag_dim 0 means no tags)")
        if self.tags is not None and self.tags.count != self.num_joints * self.tag_dim:
            raise ValueError(f"tag block {self.tags} must hold J x tag_dim channels")

    # -------------------------------------------------------------------- layouts of the zoo
    @classmethod
    def associative_embedding(
        cls, num_joints: int, num_resolutions: int = 2, tag_dim: int = 1
    ) -> HeadLayout:
        """HigherHRNet: heatmaps [0, J) of every output, J * tag_dim tags after them in output 0."""
        j = int(num_joints)
        return cls(
            num_joints=j,
            heatmaps=tuple(Channels(i, 0, j) for i in range(num_resolutions)),
            tags=Channels(0, j, j * tag_dim),
            tag_dim=tag_dim,
        )

    @classmethod
    def heatmaps_only(cls, num_joints: int) -> HeadLayout:
        """Top-down HRNet: one output of J heatmaps."""
        return cls(num_joints=int(num_joints), heatmaps=(Channels(0, 0, int(num_joints)),))

    # -------------------------------------------------------------------- reading outputs
    @property
    def num_outputs(self) -> int:
        blocks = [*self.heatmaps, *(b for _, b in self.extras)]
        if self.tags is not None:
            blocks.append(self.tags)
        return 1 + max(b.output for b in blocks)

    def output_channels(self, output: int) -> int:
        """Channels output number `output` carries (the end of its last block)."""
        blocks = [*self.heatmaps, *(b for _, b in self.extras)]
        if self.tags is not None:
            blocks.append(self.tags)
        stops = [b.stop for b in blocks if b.output == output]
        if not stops:
            raise ValueError(f"no block in output {output}")
        return max(stops)

    def heatmap_maps(self, outputs: Sequence[Tensor], resolution: int) -> Tensor:
        """(N, J, h, w) heatmaps of one resolution."""
        return self.heatmaps[resolution].take(outputs)

    def tag_maps(self, outputs: Sequence[Tensor]) -> Tensor:
        """(N, J, D, h, w) tags (a view)."""
        if self.tags is None:
            raise ValueError("this head has no tags")
        block = self.tags.take(outputs)
        return block.unflatten(1, (self.num_joints, self.tag_dim))

    def tag_resolution(self) -> int:
        """Index of the heatmap block at the tags' resolution (same output)."""
        if self.tags is None:
            raise ValueError("this head has no tags")
        for i, block in enumerate(self.heatmaps):
            if block.output == self.tags.output:
                return i
        raise ValueError("no heatmap block shares the tags' output")

    def extra(self, name: str) -> Channels:
        for key, block in self.extras:
            if key == name:
                return block
        raise KeyError(f"no extra maps named {name!r}; have {[k for k, _ in self.extras]}")
