"""Distilling the flip test's second tag into one pass (an experiment).

On the shipped model the flip test's gain in the node (fewer wrong-person edges, more people
found) comes from the tags of the mirrored pass, which the grouping uses as a second tag value
per joint (training/flip_ablation.py). A network with two tag values per joint
(`HigherHRNetSpec.tag_dim = 2`) trained with the AE loss alone lets the second value collapse
(docs/training_synthetic.md); here it is trained to predict a frozen teacher's mirrored-pass tag
instead: the teacher runs on the mirrored batch, its tag maps are mirrored back with the joints
swapped (`flip_index`, as the flip test does), and the student's second value is pulled to
them at the joints' AE positions (mean squared error over flagged joints, after taking out each
image's mean difference: a tag map is only defined up to one offset per image).

Shapes: student tags (B, J * D, H, W) joint-major (value d of joint j in channel j * D + d);
teacher tags (B, J, H, W) already mirrored back; joints (B, P, J, 2) (AE index into the
flattened (J, H, W), flag).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from pose_core.models.heads import Channels

__all__ = ["flip_tag_distillation", "mirrored_teacher_tags"]


@torch.no_grad()
def mirrored_teacher_tags(teacher: nn.Module, images: Tensor, tag_block: Channels,
                          flip_index: Sequence[int]) -> Tensor:
    """(B, J, H, W): the teacher's tags (one value per joint, `tag_block` of its outputs) for
    the mirrored images, mirrored back with the joints swapped (the flip test's order)."""
    outputs = teacher(torch.flip(images, dims=[3]))
    tags = tag_block.take(list(outputs))
    index = torch.as_tensor(list(flip_index), device=tags.device)
    return torch.flip(tags.index_select(1, index), dims=[3]).float()


def flip_tag_distillation(student_tags: Tensor, teacher_tags: Tensor, joints: Tensor,
                          tag_dim: int, value: int = 1) -> Tensor:
    """Mean squared error between the student's tag value `value` and the teacher's tag at the
    flagged joints, each image's mean difference taken out (0 when none is flagged)."""
    batch, channels, height, width = student_tags.shape
    num_joints = channels // tag_dim
    student = student_tags.reshape(batch, num_joints, tag_dim, height, width)[:, :, value]
    student = student.reshape(batch, -1).float()
    teacher = teacher_tags.reshape(batch, -1).to(student.dtype)
    index = joints[..., 0].reshape(batch, -1).long().to(student.device)
    flag = (joints[..., 1] > 0).reshape(batch, -1).to(student.dtype).to(student.device)
    difference = student.gather(1, index) - teacher.gather(1, index)
    # a tag map means nothing up to one offset per image (the grouping compares differences),
    # so each image's mean difference over its flagged joints is taken out
    count = flag.sum(dim=1, keepdim=True)
    offset = (difference * flag).sum(dim=1, keepdim=True) / count.clamp(min=1)
    return ((difference - offset) ** 2 * flag).sum() / flag.sum().clamp(min=1)
