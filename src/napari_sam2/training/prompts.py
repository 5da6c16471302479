"""Simulated user prompts for training: a first prompt per object (its mask, a click inside it
or its box) and corrective clicks sampled where the prediction is wrong.

Coordinates are model-input pixels (x, y) of a (S, S) mask, the convention of
`SAM2.predict_masks`; point labels are 1 (object), 0 (background), 2 and 3 (box corners).
"""

from dataclasses import dataclass

import numpy as np
import torch

# probabilities of the first prompt's kind (the SAM 2 recipe)
FIRST_PROMPT_KINDS = ("mask", "click", "box")
FIRST_PROMPT_PROBS = (0.5, 0.25, 0.25)


@dataclass
class Prompt:
    """One object's prompt on one frame: a mask, or points with labels (a box is two points).

    points: (N, 2) float (x, y); labels: (N,) int; mask: (S, S) bool.
    """

    kind: str
    points: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    mask: torch.Tensor | None = None

    def add_click(self, xy: tuple[float, float], label: int) -> "Prompt":
        """This prompt with one more click (a mask prompt becomes a click prompt)."""
        point = torch.tensor([xy], dtype=torch.float32)
        label_t = torch.tensor([label], dtype=torch.int32)
        if self.points is None:
            return Prompt("clicks", point, label_t)
        return Prompt("clicks", torch.cat([self.points, point]), torch.cat([self.labels, label_t]))

    @property
    def num_points(self) -> int:
        return 0 if self.points is None else len(self.points)


def random_pixel(region: torch.Tensor, rng: np.random.Generator) -> tuple[float, float]:
    """A uniformly random (x, y) pixel of a non-empty (S, S) bool region."""
    ys, xs = torch.nonzero(region, as_tuple=True)
    i = int(rng.integers(len(ys)))
    return float(xs[i]), float(ys[i])


def click_inside(mask: torch.Tensor, rng: np.random.Generator) -> Prompt:
    """A positive click at a random pixel of the object."""
    x, y = random_pixel(mask, rng)
    return Prompt("click", torch.tensor([[x, y]]), torch.tensor([1], dtype=torch.int32))


def box_around(mask: torch.Tensor, rng: np.random.Generator, noise: float = 0.1) -> Prompt:
    """The object's bounding box (x0, y0, x1, y1), each side moved by Gaussian noise of
    `noise` times the box side (at most 20 pixels), as a user's box is rarely tight."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    box = np.array([xs.min().item(), ys.min().item(), xs.max().item(), ys.max().item()], float)
    if noise > 0:
        side = np.array([box[2] - box[0], box[3] - box[1]] * 2)
        box = box + np.clip(rng.normal(0.0, noise * side), -20, 20)
        limit = mask.shape[-1] - 1
        box = np.clip(box, 0, limit)
        box = np.array([*np.minimum(box[:2], box[2:]), *np.maximum(box[:2], box[2:])])
    points = torch.tensor(box, dtype=torch.float32).view(2, 2)
    return Prompt("box", points, torch.tensor([2, 3], dtype=torch.int32))


def first_prompt(
    mask: torch.Tensor,
    rng: np.random.Generator,
    probs: tuple[float, float, float] = FIRST_PROMPT_PROBS,
    box_noise: float = 0.1,
) -> Prompt:
    """The object's prompt on the clip's first frame: its mask, a click or its box."""
    kind = FIRST_PROMPT_KINDS[int(rng.choice(3, p=np.asarray(probs) / sum(probs)))]
    if kind == "mask":
        return Prompt("mask", mask=mask)
    if kind == "click":
        return click_inside(mask, rng)
    return box_around(mask, rng, box_noise)


def corrective_click(
    predicted: torch.Tensor,
    target: torch.Tensor,
    rng: np.random.Generator,
    from_target_prob: float = 0.1,
) -> tuple[tuple[float, float], int] | None:
    """A click where the (S, S) bool prediction is wrong: positive on a missed object pixel,
    negative on a false one. With probability from_target_prob the prediction is ignored and
    the click is a positive one inside the target. None when there is nothing to correct."""
    if rng.random() < from_target_prob and target.any():
        return random_pixel(target, rng), 1
    missed = target & ~predicted
    false = predicted & ~target
    num_missed, num_false = int(missed.sum()), int(false.sum())
    if num_missed + num_false == 0:
        return None
    # one error pixel uniformly at random: its kind decides the label
    if rng.random() < num_missed / (num_missed + num_false):
        return random_pixel(missed, rng), 1
    return random_pixel(false, rng), 0
