"""Training losses: masked heatmap MSE, associative-embedding push/pull, top-down joints MSE.

Exports: `masked_heatmap_mse`, `joints_mse`, `JointsMSELoss`, `ae_loss`, `BottomUpLoss`.
"""

from __future__ import annotations

from pose_core.losses.ae_loss import ae_loss
from pose_core.losses.bottom_up_loss import BottomUpLoss
from pose_core.losses.heatmap_loss import JointsMSELoss, joints_mse, masked_heatmap_mse

__all__ = ["BottomUpLoss", "JointsMSELoss", "ae_loss", "joints_mse", "masked_heatmap_mse"]
