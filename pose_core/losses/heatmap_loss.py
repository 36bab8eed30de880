"""Heatmap losses: bottom-up masked MSE (HigherHRNet) and top-down joints MSE (HRNet).

- `masked_heatmap_mse` mirrors HigherHRNet `lib/core/loss.py::HeatmapLoss`: per sample, the mean
  over (J, H, W) of (pred − gt)² · mask, the (H, W) mask broadcast over joints; masked pixels
  still count in the denominator. Returns one value per sample (the trainer averages the batch).
- `joints_mse` mirrors HRNet `lib/core/loss.py::JointsMSELoss` with target weights:
  0.5 · mean over (N, J, H·W) of (w · (pred − gt))², w the per-joint target weight.

Shapes: pred/gt (N, J, H, W); mask (N, H, W); target_weight (N, J, 1) or (N, J).
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["JointsMSELoss", "joints_mse", "masked_heatmap_mse"]


def masked_heatmap_mse(pred: Tensor, gt: Tensor, mask: Tensor) -> Tensor:
    """Per-sample masked heatmap MSE.

    Args:
        pred: (N, J, H, W) predicted heatmaps.
        gt: (N, J, H, W) target heatmaps.
        mask: (N, H, W) loss mask, 1 where the pixel counts.

    Returns:
        (N,) loss per sample: mean over (J, H, W) of (pred − gt)² · mask.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and gt {tuple(gt.shape)} differ")
    if mask.shape != (pred.shape[0], *pred.shape[2:]):
        raise ValueError(f"mask {tuple(mask.shape)} does not match pred {tuple(pred.shape)}")
    loss = (pred - gt) ** 2 * mask[:, None, :, :].to(pred.dtype)
    return loss.mean(dim=3).mean(dim=2).mean(dim=1)


def joints_mse(pred: Tensor, gt: Tensor, target_weight: Tensor | None = None) -> Tensor:
    """Top-down joints MSE (scalar), HRNet's `JointsMSELoss`.

    Args:
        pred: (N, J, H, W) predicted heatmaps.
        gt: (N, J, H, W) targets.
        target_weight: (N, J, 1) or (N, J) per-joint weights, or None for no weighting.

    Returns:
        Scalar: 0.5 · mean((w · (pred − gt))²).
    """
    if pred.shape != gt.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and gt {tuple(gt.shape)} differ")
    batch, joints = pred.shape[:2]
    diff = (pred - gt).reshape(batch, joints, -1)
    if target_weight is not None:
        diff = diff * target_weight.reshape(batch, joints, 1).to(pred.dtype)
    return 0.5 * (diff**2).mean()


class JointsMSELoss(nn.Module):
    """Module form of `joints_mse`.

    Args:
        use_target_weight: multiply prediction and target by the joint weights.
    """

    def __init__(self, use_target_weight: bool = True) -> None:
        super().__init__()
        self.use_target_weight = use_target_weight

    def forward(self, pred: Tensor, gt: Tensor, target_weight: Tensor | None = None) -> Tensor:
        weight = target_weight if self.use_target_weight else None
        return joints_mse(pred, gt, weight)
