"""Plot lines follow every non-seed axis but the budget, so an init_from (or model) grid draws one line per arm."""

from __future__ import annotations

from transferkit.core.results import Cell
from transferkit.reporting.plots import data_efficiency_curve, efficiency_lines


def cells_without_a_strategy_axis() -> list[Cell]:
    """A few-shot cross-lingual grid: init_from x budget x seed, one strategy (so no strategy axis)."""
    cells = []
    for init, base in (("runs/en", 0.80), (None, 0.55)):
        for budget in (8, 32, 128):
            for seed in (1, 2):
                accuracy = base + 0.001 * budget + 0.01 * seed
                axes = {"init_from": init, "data.budget": budget, "training.seed": seed}
                cells.append(Cell(f"{init}-{budget}-{seed}", axes, {}, status="done", train_seconds=10.0,
                                  trainable_parameters=1000, metrics={"eval": {"accuracy": accuracy}}))
    return cells


def test_each_init_from_arm_is_its_own_line() -> None:
    lines = efficiency_lines(cells_without_a_strategy_axis(), "accuracy", "eval")
    assert set(lines) == {"init_from=runs/en", "init_from=None"}
    english = lines["init_from=runs/en"]
    assert [r["data.budget"] for r in english] == [8, 32, 128]
    assert abs(english[0]["mean"] - (0.80 + 0.008 + 0.015)) < 1e-9  # mean over the two seeds of that arm only
    assert data_efficiency_curve(cells_without_a_strategy_axis(), split="eval").startswith(b"\x89PNG")


def test_a_strategy_grid_keeps_strategy_names_as_labels() -> None:
    cells = [Cell(f"{s}-{b}", {"strategy": s, "data.budget": b, "training.seed": 1}, {}, status="done",
                  metrics={"eval": {"accuracy": 0.5}}) for s in ("lora", "finetune") for b in (8, 32)]
    assert list(efficiency_lines(cells, "accuracy", "eval")) == ["finetune", "lora"]


def test_pretraining_curves_draw_each_adapted_encoder_once_and_refuse_runs_without_one() -> None:
    import pytest

    from transferkit.core.errors import UserError
    from transferkit.reporting.plots import pretraining_curves

    def stage(start: float) -> dict:
        points = [{"step": s, "mlm_loss": start - 0.1 * i} for i, s in enumerate((0, 30, 60))]
        return {"continued_pretraining": {"corpus": "target_unlabeled", "texts": 900, "heldout_mlm_loss": points}}

    cells = [Cell(f"{target}-{seed}", {"data.test": target, "training.seed": seed}, {}, status="done",
                  metrics={"eval": {"accuracy": 0.8}, "encoder": stage(start)})
             for target, start in (("dvd", 3.0), ("books", 3.2)) for seed in (1, 2)]
    assert pretraining_curves(cells).startswith(b"\x89PNG")
    with pytest.raises(UserError, match="continued pretraining"):
        pretraining_curves(cells_without_a_strategy_axis())
