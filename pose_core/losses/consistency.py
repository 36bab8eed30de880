"""Losses of the semi-supervised pose study (PoseCons / PoseDual, Xie et al., ICCV 2021).

Official `xierc/Semi_Human_Pose` `lib/core/loss.py` (`JointsMSELoss`, `PoseDisLoss`,
`PoseCoLoss`), written from the spec:

- L(P, T, w) = (1/J) sum_j 0.5 * mean over (N, h*w) of (w[n, j] P - w[n, j] T)^2
  (`pose_core.losses.heatmap_loss.joints_mse`; the weight acts squared);
- PoseCons: loss_pose = L(f(x_l), y_l, w_l), loss_cons = L(f(hard), T_e->h(f(easy)), w_u);
- PoseDual: loss_pose = 0.5 L(f1(x_l), y_l, w_l) + 0.5 L(f2(x_l), y_l, w_l),
  loss_cons = L(f1(hard1), T_e->h(f2(easy)), w_u) + L(f2(hard2), T_e->h(f1(easy)), w_u).

Shapes: heatmaps (N, J, h, w); weights (N, J, 1). Teacher maps must come detached.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from pose_core.losses.heatmap_loss import joints_mse

__all__ = ["consistency_losses", "supervised_loss"]


def supervised_loss(predictions: Sequence[Tensor], target: Tensor, weight: Tensor) -> Tensor:
    """Mean over networks of L(prediction, target, weight) (PoseDual: 0.5 each)."""
    losses = [joints_mse(p, target, weight) for p in predictions]
    return sum(losses[1:], losses[0]) / len(losses)


def consistency_losses(
    students: Sequence[Tensor], teachers: Sequence[Tensor], weight: Tensor
) -> list[Tensor]:
    """L(student_k, teacher_k, weight) per network; teacher_k is the warped easy-view
    prediction of the network that teaches network k (PoseCons: itself; PoseDual: the other)."""
    return [joints_mse(s, t.detach(), weight) for s, t in zip(students, teachers, strict=True)]
