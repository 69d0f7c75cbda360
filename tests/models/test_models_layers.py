"""layer_groups(): ordered bottom-to-top groups that partition the parameters."""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertConfig, BertModel, DistilBertConfig, DistilBertModel, GPT2Config, GPT2Model

from transferkit.models import LayerGroup, layer_groups, load_backbone, num_layers


def assert_partition(model: nn.Module, groups: list[LayerGroup]) -> None:
    """Every parameter of ``model`` is in exactly one group, with its own name."""
    ids = [id(param) for group in groups for param in group.parameters()]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(param) for param in model.parameters()}
    named = dict(model.named_parameters())
    for group in groups:
        for name, param in group.named_parameters():
            assert named[name] is param


def test_tiny_bert_groups(tiny_bert_dir: str) -> None:
    backbone = load_backbone(tiny_bert_dir).backbone
    groups = layer_groups(backbone)
    assert [group.name for group in groups] == ["embeddings", "layer.0", "layer.1", "pooler"]
    assert_partition(backbone, groups)
    assert groups[1].modules == [backbone.encoder.layer[0]]
    assert all(name.startswith("encoder.layer.1.") for name, _ in groups[2].named_parameters())
    assert [group.is_layer for group in groups] == [False, True, True, False]
    assert sum(group.num_params() for group in groups) == sum(p.numel() for p in backbone.parameters())
    assert num_layers(backbone) == 2


def test_minilm_groups(minilm_dir: str) -> None:
    backbone = load_backbone("minilm-l6").backbone
    groups = layer_groups(backbone)
    assert [group.name for group in groups] == ["embeddings"] + [f"layer.{i}" for i in range(6)] + ["pooler"]
    assert_partition(backbone, groups)
    assert num_layers(backbone) == 6


def test_bert_without_pooler() -> None:
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32)
    backbone = BertModel(config, add_pooling_layer=False)
    groups = layer_groups(backbone)
    assert [group.name for group in groups] == ["embeddings", "layer.0", "layer.1", "layer.2"]
    assert_partition(backbone, groups)


def test_generic_fallback_gpt2() -> None:
    config = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, bos_token_id=0, eos_token_id=0)
    backbone = GPT2Model(config)
    groups = layer_groups(backbone)
    assert [group.name for group in groups] == ["embeddings", "layer.0", "layer.1", "other"]
    assert_partition(backbone, groups)
    by_name = {group.name: group for group in groups}
    assert all(name.startswith("h.0.") for name, _ in by_name["layer.0"].named_parameters())
    assert all(name.startswith("h.1.") for name, _ in by_name["layer.1"].named_parameters())
    assert {name for name, _ in by_name["embeddings"].named_parameters()} == {"wte.weight", "wpe.weight"}
    assert {name for name, _ in by_name["other"].named_parameters()} == {"ln_f.weight", "ln_f.bias"}
    assert by_name["layer.1"].modules == [backbone.h[1]]
    assert num_layers(backbone) == 2


def test_generic_fallback_distilbert() -> None:
    config = DistilBertConfig(vocab_size=100, dim=32, n_layers=3, n_heads=2, hidden_dim=64, max_position_embeddings=64)
    backbone = DistilBertModel(config)
    groups = layer_groups(backbone)
    assert [group.name for group in groups] == ["embeddings", "layer.0", "layer.1", "layer.2"]
    assert_partition(backbone, groups)


def test_generic_orders_numerically_and_by_container() -> None:
    class EncoderDecoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed_tokens = nn.Embedding(10, 4)
            self.encoder = nn.Module()
            self.encoder.blocks = nn.ModuleList(nn.Linear(4, 4) for _ in range(11))
            self.decoder = nn.Module()
            self.decoder.blocks = nn.ModuleList(nn.Linear(4, 4) for _ in range(2))
            self.head_norm = nn.LayerNorm(4)

    model = EncoderDecoder()
    groups = layer_groups(model)
    assert [group.name for group in groups] == ["embeddings"] + [f"layer.{i}" for i in range(13)] + ["other"]
    assert groups[11].modules == [model.encoder.blocks[10]]
    assert groups[12].modules == [model.decoder.blocks[0]]
    assert_partition(model, groups)


def test_tied_parameter_counted_once() -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.layers = nn.ModuleList([nn.Linear(4, 4)])
            self.out = nn.Linear(4, 10, bias=False)
            self.out.weight = self.emb.weight

    model = Tied()
    groups = layer_groups(model)
    assert [group.name for group in groups] == ["embeddings", "layer.0"]
    assert_partition(model, groups)
    assert torch.equal(groups[0].parameters()[0], model.out.weight)
