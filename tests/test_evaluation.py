import torch

from tinysnn.evaluation import (
    UNASSIGNED,
    Scores,
    assign_labels,
    confusion_matrix,
    predict_all_activity,
    predict_proportion,
)


def test_assignment_is_class_of_highest_mean_response():
    # 3 neurons, 2 classes; neuron 2 never fires
    counts = torch.tensor([[4.0, 0.0, 0.0], [2.0, 1.0, 0.0], [0.0, 3.0, 0.0]])
    labels = torch.tensor([0, 0, 1])
    a = assign_labels(counts, labels, n_classes=2)
    assert a.labels.tolist() == [0, 1, UNASSIGNED]
    assert torch.allclose(a.class_rates, torch.tensor([[3.0, 0.0], [0.5, 3.0], [0.0, 0.0]]))
    assert torch.allclose(a.proportions[1], torch.tensor([0.5 / 3.5, 3.0 / 3.5]))


def test_all_activity_averages_over_assigned_neurons():
    assignment = assign_labels(torch.eye(3), torch.tensor([0, 1, 1]), n_classes=2)
    # class 0: neuron 0 alone; class 1: mean of neurons 1 and 2
    counts = torch.tensor([[3.0, 4.0, 0.0], [1.0, 2.0, 2.0]])
    assert predict_all_activity(counts, assignment, 2).tolist() == [0, 1]


def test_proportion_weighting_uses_response_shares():
    counts_label = torch.tensor([[2.0, 1.0], [0.0, 1.0]])
    assignment = assign_labels(counts_label, torch.tensor([0, 1]), n_classes=2)
    # neuron 0: assigned 0 with share 1; neuron 1: assigned 0 too (tie → first class), share 0.5
    assert assignment.labels.tolist() == [0, 0]
    assert predict_proportion(torch.tensor([[0.0, 4.0]]), assignment, 2).tolist() == [0]


def test_confusion_and_scores():
    predicted = torch.tensor([0, 1, 1, 2])
    labels = torch.tensor([0, 1, 2, 2])
    m = confusion_matrix(predicted, labels, 3)
    assert m.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    s = Scores.of(predicted, labels, 3)
    assert s.accuracy == 0.75 and s.per_class == [1.0, 1.0, 0.5]
