"""Label assignment from a frozen labelled pass, class prediction and accuracy.

Neurons learn without labels; afterwards each neuron is assigned the class to which it
responded most on average (D&C). A test image is then classified by
* all-activity: the class whose assigned neurons fire most on average, or
* proportion weighting (BindsNET): each neuron votes with its share of responses per class.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

UNASSIGNED = -1


@dataclass(frozen=True)
class Assignment:
    labels: torch.Tensor  # int64 [N], UNASSIGNED for neurons that never fired
    proportions: torch.Tensor  # float [N, C], each neuron's response share per class
    class_rates: torch.Tensor  # float [N, C], mean spike count per presentation of each class


def assign_labels(counts: torch.Tensor, labels: torch.Tensor, n_classes: int = 10) -> Assignment:
    """counts [n, N] spike counts of n labelled images → per-neuron class assignment."""
    one_hot = torch.nn.functional.one_hot(labels, n_classes).to(counts.dtype)  # [n, C]
    per_class = one_hot.sum(0).clamp_min(1)
    class_rates = (counts.T @ one_hot) / per_class  # [N, C]
    totals = class_rates.sum(1, keepdim=True)
    assigned = class_rates.argmax(1)
    assigned = torch.where(totals.squeeze(1) > 0, assigned, torch.full_like(assigned, UNASSIGNED))
    proportions = class_rates / totals.clamp_min(1e-12)
    return Assignment(labels=assigned, proportions=proportions, class_rates=class_rates)


def _class_membership(assignment: Assignment, n_classes: int) -> torch.Tensor:
    """float [N, C]: 1 where neuron j is assigned class c."""
    labels = assignment.labels
    return (labels[:, None] == torch.arange(n_classes, device=labels.device)).float()


def predict_all_activity(counts: torch.Tensor, assignment: Assignment, n_classes: int = 10) -> torch.Tensor:
    """score_c = mean spike count of the neurons assigned to c (0 if none); predict argmax."""
    member = _class_membership(assignment, n_classes)
    scores = (counts @ member) / member.sum(0).clamp_min(1)
    return scores.argmax(1)


def predict_proportion(counts: torch.Tensor, assignment: Assignment, n_classes: int = 10) -> torch.Tensor:
    """score_c = Σ_j s_j · p_jc over neurons assigned to c, divided by their number."""
    member = _class_membership(assignment, n_classes)
    weighted = member * assignment.proportions
    scores = (counts @ weighted) / member.sum(0).clamp_min(1)
    return scores.argmax(1)


def confusion_matrix(predicted: torch.Tensor, labels: torch.Tensor, n_classes: int = 10) -> torch.Tensor:
    """int64 [C, C]: rows true class, columns predicted class."""
    flat = labels.long() * n_classes + predicted.long()
    return torch.bincount(flat, minlength=n_classes * n_classes).view(n_classes, n_classes)


@dataclass(frozen=True)
class Scores:
    accuracy: float
    per_class: list[float]
    confusion: list[list[int]]

    @classmethod
    def of(cls, predicted: torch.Tensor, labels: torch.Tensor, n_classes: int = 10) -> "Scores":
        matrix = confusion_matrix(predicted.cpu(), labels.cpu(), n_classes)
        support = matrix.sum(1).clamp_min(1)
        return cls(
            accuracy=float(matrix.diagonal().sum()) / max(1, len(labels)),
            per_class=(matrix.diagonal().double() / support).tolist(),
            confusion=matrix.tolist(),
        )
