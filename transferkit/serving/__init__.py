"""Load saved runs, predict, write predictions."""

from transferkit.serving.output import write_predictions, write_records
from transferkit.serving.predictor import NeuralPredictor, load_predictor

__all__ = ["NeuralPredictor", "load_predictor", "write_predictions", "write_records"]
