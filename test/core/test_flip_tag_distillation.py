"""The flip-tag distillation term (experiment): teacher tags mirrored back, student's second value."""

from __future__ import annotations

import torch
from torch import nn

from pose_core.keypoint_specs import COCO_17
from pose_core.losses.flip_tag_distillation import flip_tag_distillation, mirrored_teacher_tags
from pose_core.models.heads import HeadLayout


class PixelTeacher(nn.Module):
    """Per-pixel outputs (no spatial mixing): heatmaps 0, tag of joint j = (j + 1) x channel 0."""

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        tags = images[:, :1] * torch.arange(1, 18, dtype=images.dtype).view(1, 17, 1, 1)
        return [torch.cat([torch.zeros_like(tags), tags], dim=1)]


def test_mirrored_teacher_tags_undo_the_mirror_and_swap_the_joints() -> None:
    images = torch.randn(2, 3, 8, 12)
    head = HeadLayout.associative_embedding(17, 1)
    tags = mirrored_teacher_tags(PixelTeacher(), images, head.tags, COCO_17.flip_index)
    # a per-pixel teacher on the mirrored image, mirrored back: its tags of the image itself,
    # joint j reading the teacher's channel of flip_index[j]
    expected = images[:, :1] * torch.tensor([f + 1.0 for f in COCO_17.flip_index]).view(1, 17, 1, 1)
    torch.testing.assert_close(tags, expected)


def test_distillation_is_the_mean_squared_error_of_the_second_value_at_flagged_joints() -> None:
    batch, joints_n, height, width = 1, 2, 3, 4
    student = torch.zeros(batch, joints_n * 2, height, width)
    student[:, 1::2] = 1.0  # second values 1 everywhere, first values 0
    teacher = torch.zeros(batch, joints_n, height, width)
    teacher[0, 1, 2, 3] = 3.0
    # person 0: joint 0 at (0, 0), joint 1 at (2, 3); person 1: unflagged
    index = torch.tensor([[[0, 1], [1 * height * width + 2 * width + 3, 1]],
                          [[5, 0], [6, 0]]]).unsqueeze(0)
    loss = flip_tag_distillation(student, teacher, index, tag_dim=2)
    # differences 1 and -2, the image's mean difference (-0.5) taken out: 1.5 and -2.5 + 1
    torch.testing.assert_close(loss, torch.tensor((1.5 ** 2 + 1.5 ** 2) / 2))
    assert flip_tag_distillation(student, teacher, index[..., :1, :] * 0, tag_dim=2) == 0
    # a tag map is defined up to one offset per image: an offset alone costs nothing
    shifted = student.clone()
    shifted[:, 1::2] = teacher + 7.0
    assert flip_tag_distillation(shifted, teacher, index, tag_dim=2) == 0
