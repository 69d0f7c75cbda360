"""Load saved runs, predict, write predictions."""

from transferkit.serving.model import Model
from transferkit.serving.predictor import NeuralPredictor, load_predictor

__all__ = ["Model", "NeuralPredictor", "load_predictor"]
