"""Continual (lifelong) learning: one model learns a stream of stages (``data.stream``: tasks or domains arriving
one after another) without retraining from zero and, as far as the method allows, without forgetting.

Every method runs the plan of :mod:`.plan` (train stage after stage; after each, every stage's test set: the
accuracy matrix R and its ACC, BWT and FWT, Lopez-Paz & Ranzato 2017) and differs only in what a stage trains on:

* ``sequential`` — plain fine-tuning, stage after stage: the lower bound;
* ``joint`` — every stage at once: the upper bound;
* ``replay`` — each step also replays a batch from a reservoir memory (d'Autume et al. 2019; Chaudhry et al. 2019);
* ``ewc`` — online elastic weight consolidation (Kirkpatrick et al. 2017; Schwarz et al. 2018);
* ``lwf`` — learning without forgetting: distil the previous model's responses (Li & Hoiem 2016);
* ``adapters`` — a LoRA adapter and a head per stage on a frozen encoder, the stage named at prediction: no
  forgetting by construction (Madotto et al. 2021; Hu et al. 2022); ``continual.setting: task`` only.

Every method also learns a stream in the ``task`` setting (a head per stage, named at prediction): :mod:`.task_setting`.
"""

from transferkit.strategies.continual.adapters import Adapters
from transferkit.strategies.continual.ewc import Ewc
from transferkit.strategies.continual.joint import Joint
from transferkit.strategies.continual.lwf import Lwf
from transferkit.strategies.continual.replay import Replay
from transferkit.strategies.continual.sequential import Sequential

__all__ = ["Adapters", "Ewc", "Joint", "Lwf", "Replay", "Sequential"]
