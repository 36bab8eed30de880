"""Coupled Embedding losses: scale-wise heatmaps, multi-dimensional pull/push, coupling loss.

Mirrors the official CE release (`CR320/CoupledEmbedding` @ cc57620):
`models/loss/loss_factory.py` (`ScaleWiseHeatmapsLoss`, `RegularizedAssociativeEmbeddingLoss`)
and `models/trainer.py::Trainer.forward` (scale read-out, loss weights). Parity README §4.5.

Shapes: heatmaps (N, J, h_r, w_r) per resolution r (predictions, targets), masks (N, h_r, w_r);
tags (N, J, D, h, w) at the first resolution (our `HeadLayout.tag_maps` layout; the official
(N, J, h, w, D) is the same numbers); joints (N, M, J, 2) int (flat index j*h*w + y*w + x,
flag); box_scales (N, M) float64 (slot m of joints and scales is the same person).

- scale read-out (detached tags): w = |t| / max(sum_d |t_d|, 1e-12), s_hat = sum_d w_d c_d with
  c_d = (d + 0.5) / D; bilinearly resized (align_corners False) for other resolutions;
- scale-wise heatmap target T' = T ** ((beta / s_hat) ** 2) (beta 0.40 COCO, 0.55 CrowdPose);
  loss (P - T')**2, times the focal-like weight p|1 - P| + (1 - p)|P| with p = (1 - ln T')
  ** (-gamma) (gamma 0.01) when `focal`, times the mask; mean over all elements; summed over
  resolutions;
- pull: per image, per person with >= 1 labelled joint, mean over its joints of
  ||t_j - mean||^2 (squared L2 over D), summed over people / number of people;
- push: 0.5 * mean over ordered pairs n != m of exp(-||mean_n - mean_m||^2) (0 below 2 people);
- coupling (scale) loss: per person 1 - cos(L2-normalise(|mean tag|), scale code of its box
  scale), summed / number of people (in float64, as the release);
- batch: each AE term is the mean over images (images without people count 0);
- weights (release): heatmaps 1, pull 1e-3, push 1e-3, scale 1e-4.

Zero-tag guard (ours; the release has none): where sum_d |t_d| is 0 the release reads s_hat = 0,
so beta / s_hat = inf and the target keeps only its exact peaks (T' = 1 where T = 1, else 0).
`zero_tag_guard="fixed_sigma"` (default) uses s_hat = beta there instead (T' = T, the plain
sigma-2 target) for pixels whose |t| sums to at most `zero_tag_eps`; "release" keeps the
release's behaviour. Both give the release's numbers wherever the tags are not (near) zero.

Ablation switches (same code path): `scale_adaptive=False` (fixed-sigma targets: T' = T),
`focal=False` (plain masked MSE), `scale_factor=0` (no coupling loss), and D = 1 tags (the
plain AE; its scale code is the constant 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "CoupledEmbeddingLossConfig",
    "CoupledEmbeddingLoss",
    "read_scales",
    "scale_wise_heatmap_loss",
    "multi_dim_ae_losses",
]

ZeroTagGuard = Literal["fixed_sigma", "release"]


@dataclass(frozen=True)
class CoupledEmbeddingLossConfig:
    """Loss settings (release values as defaults; beta 0.55 for CrowdPose).

    Attributes:
        beta: scale of the scale-wise target (0.40 COCO, 0.55 CrowdPose).
        focal: use the focal-like pixel weight; focal_gamma its exponent.
        scale_adaptive: scale-adapted targets (False: fixed sigma).
        heatmap_factor / pull_factor / push_factor / scale_factor: loss weights.
        zero_tag_guard / zero_tag_eps: see the module docstring.
    """

    beta: float = 0.40
    focal: bool = True
    focal_gamma: float = 0.01
    scale_adaptive: bool = True
    heatmap_factor: float = 1.0
    pull_factor: float = 1e-3
    push_factor: float = 1e-3
    scale_factor: float = 1e-4
    zero_tag_guard: ZeroTagGuard = "fixed_sigma"
    zero_tag_eps: float = 1e-12


def read_scales(tags: Tensor, guard_value: float | None = None, eps: float = 1e-12) -> Tensor:
    """s_hat (N, J, h, w) from tags (N, J, D, h, w) (detached inside); where sum |t| <= eps,
    `guard_value` when given (else the release's 0)."""
    magnitude = tags.detach().abs()
    total = magnitude.sum(dim=2)
    dim = tags.shape[2]
    centres = (torch.arange(dim, device=tags.device, dtype=tags.dtype) + 0.5) / dim
    weights = magnitude / total.clamp_min(1e-12)[:, :, None]
    scales = (weights * centres[None, None, :, None, None]).sum(dim=2)
    if guard_value is not None:
        scales = torch.where(total <= eps, torch.full_like(scales, guard_value), scales)
    return scales


def scale_wise_heatmap_loss(
    prediction: Tensor,
    target: Tensor,
    scales: Tensor | None,
    mask: Tensor | None,
    beta: float = 0.40,
    focal: bool = True,
    gamma: float = 0.01,
) -> Tensor:
    """One resolution: mean over (N, J, h, w) of (P - T')^2 [* focal weight] [* mask];
    `scales` None means fixed sigma (T' = T)."""
    if scales is not None:
        target = target ** ((beta / scales) ** 2)
    loss = (prediction - target) ** 2
    if focal:
        positive = (1 - torch.log(target)) ** (-gamma)
        weight = positive * torch.abs(1 - prediction) + (1 - positive) * torch.abs(prediction)
        loss = loss * weight
    if mask is not None:
        loss = loss * mask[:, None]
    return loss.mean()


def multi_dim_ae_losses(
    tags: Tensor, joints: Tensor, box_scales: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """(pull, push, scale) unweighted batch means; tags (N, J, D, h, w)."""
    num_images, _, dim = tags.shape[:3]
    flat = tags.permute(0, 1, 3, 4, 2).reshape(num_images, -1, dim)
    centres = (torch.arange(dim, device=tags.device, dtype=torch.float64) + 0.5) / dim
    pulls, pushes, couplings = [], [], []
    for n in range(num_images):
        pull, push, coupling = _image_ae(
            flat[n], joints[n], None if box_scales is None else box_scales[n], centres
        )
        pulls.append(pull)
        pushes.append(push)
        couplings.append(coupling)
    return torch.stack(pulls).mean(), torch.stack(pushes).mean(), torch.stack(couplings).mean()


def _image_ae(
    tags: Tensor, joints: Tensor, box_scales: Tensor | None, centres: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """One image: tags (J*h*w, D), joints (M, J, 2), box_scales (M,)."""
    labelled = joints[..., 1] > 0
    people = torch.nonzero(labelled.any(dim=1)).flatten()
    zero = tags.sum() * 0
    if len(people) == 0:
        return zero, zero, zero.double()
    means, pull, coupling = [], zero, zero.double()
    for person in people.tolist():
        person_tags = tags[joints[person, labelled[person], 0].long()]
        mean = person_tags.mean(dim=0)
        means.append(mean)
        pull = pull + ((person_tags - mean) ** 2).sum(dim=1).mean()
        if box_scales is not None:
            gap = (box_scales[person].double() - centres).abs()
            code = F.normalize(1.0 / (gap + 1e-12), p=2, dim=0)
            direction = F.normalize(mean.abs(), p=2, dim=0)
            coupling = coupling + (1 - (direction.double() * code).sum())
    count = len(means)
    if count < 2:
        return pull / count, zero, coupling / count
    stacked = torch.stack(means)
    difference = ((stacked[:, None] - stacked[None]) ** 2).sum(dim=-1)
    off_diagonal = ~torch.eye(count, dtype=torch.bool, device=tags.device)
    push = torch.exp(-difference[off_diagonal]).mean() * 0.5
    return pull / count, push, coupling / count


class CoupledEmbeddingLoss(nn.Module):
    """The CE training loss on raw outputs read through a `HeadLayout`.

    Args:
        head: the network's `HeadLayout` (heatmap blocks, D-dim tags).
        config: weights and switches.

    Call: (outputs, heatmaps per resolution, masks per resolution, joints (N, M, J, 2),
    box_scales (N, M)) -> {"heatmaps", "pull", "push", "scale"} weighted scalar tensors.
    """

    def __init__(self, head: object, config: CoupledEmbeddingLossConfig | None = None) -> None:
        super().__init__()
        self.head = head
        self.config = config or CoupledEmbeddingLossConfig()

    def heatmap_terms(
        self,
        outputs: Sequence[Tensor],
        targets: Sequence[Tensor],
        masks: Sequence[Tensor | None],
        tags: Tensor,
    ) -> list[Tensor]:
        """Unweighted scale-wise heatmap loss of each resolution."""
        config = self.config
        scales = None
        if config.scale_adaptive:
            guard = config.beta if config.zero_tag_guard == "fixed_sigma" else None
            scales = read_scales(tags, guard, config.zero_tag_eps)
        terms = []
        for i, target in enumerate(targets):
            prediction = self.head.heatmap_maps(outputs, i)  # type: ignore[attr-defined]
            level = scales
            if scales is not None and scales.shape[-2:] != prediction.shape[-2:]:
                level = F.interpolate(scales, size=prediction.shape[-2:], mode="bilinear",
                                      align_corners=False)
            terms.append(scale_wise_heatmap_loss(
                prediction, target, level, masks[i], config.beta, config.focal,
                config.focal_gamma,
            ))
        return terms

    def forward(
        self,
        outputs: Sequence[Tensor],
        heatmaps: Sequence[Tensor],
        masks: Sequence[Tensor | None],
        joints: Tensor,
        box_scales: Tensor | None,
    ) -> dict[str, Tensor]:
        config = self.config
        tags = self.head.tag_maps(outputs)  # type: ignore[attr-defined]
        heatmap_loss = torch.stack(self.heatmap_terms(outputs, heatmaps, masks, tags)).sum()
        pull, push, coupling = multi_dim_ae_losses(tags, joints, box_scales)
        return {
            "heatmaps": heatmap_loss * config.heatmap_factor,
            "pull": pull * config.pull_factor,
            "push": push * config.push_factor,
            "scale": (coupling * config.scale_factor).to(heatmap_loss.dtype),
        }
