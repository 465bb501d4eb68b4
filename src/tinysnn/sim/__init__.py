"""The simulators: input currents, the excitatory layer's reference step, training (spike-driven
and windowed, with their integrators), batched inference and the presentation protocol."""

from .inference import InferenceSimulator
from .protocol import (
    TrainingLog,
    TrainingProgress,
    collect_counts,
    present_with_retries,
    start_training,
    train_epochs,
    train_image,
)
from .training import TrainingSimulator
from .windowed import WindowedTrainingSimulator, make_training_simulator

__all__ = ["InferenceSimulator", "TrainingLog", "TrainingProgress", "TrainingSimulator", "WindowedTrainingSimulator",
           "collect_counts", "make_training_simulator", "present_with_retries", "start_training", "train_epochs",
           "train_image"]
