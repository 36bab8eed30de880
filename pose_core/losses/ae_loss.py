"""Associative-embedding pull/push loss (Newell et al., NeurIPS 2017), HigherHRNet's variant.

Mirrors HigherHRNet `lib/core/loss.py::AELoss`, vectorised over people and images:

- a joint's tag is the value of the flattened (J·H·W) tag map at its AE index
  (`pose_core.codecs.associative_embedding`); entries whose flag is 0 are ignored;
- per person with ≥ 1 flagged joint: reference tag = mean of its joint tags,
  pull_p = mean over its joints of (tag − ref)²; pull = Σ_p pull_p / N (N = such people);
- push over all ordered pairs (a, b) of reference tags, the diagonal included:
  'exp': Σ exp(−(t_a − t_b)²); 'max': Σ max(0, 1 − |t_a − t_b|); then (Σ − N) / (N(N−1)) · 0.5;
- N = 0: push = pull = 0; N = 1: push = 0.

The official yaml uses 'exp' (the code default is 'max'), with push/pull factors 0.001.
Tags of D > 1 values per joint (an extension; the official loss has D = 1): squared differences
become squared Euclidean distances and |t_a − t_b| the Euclidean norm, so D = 1 is unchanged.
Shapes: tags (B, L) or (B, L, D) with L = J·H·W; joints (B, P, J, 2) int64 (index, flag).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["AE_LOSS_TYPES", "ae_loss"]

AE_LOSS_TYPES = ("exp", "max")


def ae_loss(tags: Tensor, joints: Tensor, loss_type: str = "exp") -> tuple[Tensor, Tensor]:
    """Per-image push and pull losses (no factors applied).

    Args:
        tags: (B, L) or (B, L, D) tag maps flattened over (J, H, W), D values per pixel.
        joints: (B, P, J, 2) integer (flat index, flag) per person slot, as the AE codec packs
            them (any layout of flagged entries is accepted, not only dense packing).
        loss_type: "exp" or "max".

    Returns:
        push (B,), pull (B,) tensors in the dtype of `tags`.
    """
    if loss_type not in AE_LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {AE_LOSS_TYPES}, got {loss_type!r}")
    if tags.dim() == 2:
        tags = tags[:, :, None]
    if tags.dim() != 3:
        raise ValueError(f"tags must be (B, L) or (B, L, D), got {tuple(tags.shape)}")
    if joints.dim() != 4 or joints.shape[-1] != 2 or joints.shape[0] != tags.shape[0]:
        raise ValueError(
            f"joints must be (B, P, J, 2) with B={tags.shape[0]}, got {tuple(joints.shape)}"
        )
    batch, people, num_joints = joints.shape[:3]
    joints = joints.to(device=tags.device, dtype=torch.long)
    index = joints[..., 0].reshape(batch, people * num_joints)
    flag = (joints[..., 1] > 0).to(tags.dtype)  # (B, P, J)
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= tags.shape[1]):
        raise ValueError(f"AE indices outside [0, {tags.shape[1]}) of the flattened tag map")
    dim = tags.shape[2]
    values = tags.gather(1, index[..., None].expand(-1, -1, dim)).reshape(
        batch, people, num_joints, dim)
    count = flag.sum(dim=2)  # (B, P)
    valid = count > 0
    safe_count = count.clamp(min=1)
    reference = (values * flag[..., None]).sum(dim=2) / safe_count[..., None]  # (B, P, D)
    squared = ((values - reference[:, :, None]) ** 2).sum(dim=3)  # (B, P, J)
    pull_person = (squared * flag).sum(dim=2) / safe_count
    valid_f = valid.to(tags.dtype)
    num_people = valid_f.sum(dim=1)  # (B,)
    pull = (pull_person * valid_f).sum(dim=1) / num_people.clamp(min=1)

    diff2 = ((reference[:, :, None] - reference[:, None, :]) ** 2).sum(dim=3)  # (B, P, P)
    pair = valid_f[:, :, None] * valid_f[:, None, :]
    if loss_type == "exp":
        similarity = torch.exp(-diff2)
    elif dim == 1:
        difference = reference[:, :, None, 0] - reference[:, None, :, 0]
        similarity = torch.clamp(1 - difference.abs(), min=0)
    else:  # sqrt's gradient at 0 (the diagonal) is infinite: a safe norm
        distance = torch.where(diff2 > 0, diff2.clamp(min=1e-12).sqrt(), diff2)
        similarity = torch.clamp(1 - distance, min=0)
    total = (similarity * pair).sum(dim=(1, 2)) - num_people
    pairs = num_people * (num_people - 1)
    push = torch.where(pairs > 0, total / pairs.clamp(min=1) * 0.5, torch.zeros_like(total))
    return push, pull
