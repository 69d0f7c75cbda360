"""Masked-LM pieces: BERT's 80/10/10 masking (token and whole-word), the tied head, the masked-only loss."""

from __future__ import annotations

import pytest
import torch

from transferkit.core.contracts import IGNORE_INDEX
from transferkit.modules.masked_lm import MaskedLMHead, MaskingVocabulary, mask_tokens, masked_lm_loss

PAD, CLS, SEP, MASK = 0, 1, 2, 3


def vocabulary(word_start: list[bool] | None = None, size: int = 40) -> MaskingVocabulary:
    special = torch.zeros(size, dtype=torch.bool)
    special[[PAD, CLS, SEP, MASK]] = True
    return MaskingVocabulary(MASK, size, special, None if word_start is None else torch.tensor(word_start))


def batch(rows: int = 64, length: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(4, 40, (rows, length), generator=torch.Generator().manual_seed(0))
    ids[:, 0], ids[:, -1] = CLS, SEP
    mask = torch.ones_like(ids)
    ids[: rows // 2, 20:] = PAD  # half the rows are padded
    mask[: rows // 2, 20:] = 0
    return ids, mask


def test_masking_picks_about_15_percent_of_real_tokens_and_follows_80_10_10() -> None:
    ids, mask = batch(rows=512)
    corrupted, labels = mask_tokens(ids, mask, vocabulary(), 0.15, generator=torch.Generator().manual_seed(1))
    picked = labels != IGNORE_INDEX
    real = mask.bool() & (ids > MASK)
    assert not (picked & ~real).any(), "special tokens and padding are never picked"
    assert torch.equal(labels[picked], ids[picked])
    assert 0.13 < picked.sum() / real.sum() < 0.17
    as_mask = (corrupted[picked] == MASK).float().mean()
    kept = (corrupted[picked] == ids[picked]).float().mean()
    assert 0.77 < as_mask < 0.83 and 0.07 < kept < 0.14  # 10% kept + random draws equal to the original
    assert torch.equal(corrupted[~picked], ids[~picked])


def test_every_row_with_a_real_token_gets_at_least_one_mask() -> None:
    ids = torch.tensor([[CLS, 7, SEP, PAD], [CLS, 8, 9, SEP]])
    _, labels = mask_tokens(ids, (ids != PAD).long(), vocabulary(), 1e-6, generator=torch.Generator().manual_seed(0))
    assert ((labels != IGNORE_INDEX).sum(dim=1) == 1).all()


def test_whole_word_masking_masks_every_piece_of_a_picked_word() -> None:
    starts = [True] * 40
    for piece in range(20, 40):  # ids 20..39 continue a word ("##...")
        starts[piece] = False
    ids = torch.tensor([[CLS] + [5, 25, 26, 6, 27, 7, 8, 28, 29, 30] * 20 + [SEP]])
    _, labels = mask_tokens(ids, torch.ones_like(ids), vocabulary(starts), 0.3, whole_word=True,
                            generator=torch.Generator().manual_seed(3))
    picked = (labels != IGNORE_INDEX)[0].tolist()
    word = torch.cumsum(torch.tensor(starts)[ids[0]].long(), 0).tolist()
    groups: dict[int, set[bool]] = {}
    for position in range(1, ids.shape[1] - 1):
        groups.setdefault(word[position], set()).add(picked[position])
    assert all(len(flags) == 1 for flags in groups.values()), "a word is masked whole or not at all"
    assert any(True in flags for flags in groups.values()) and any(False in flags for flags in groups.values())


def test_whole_word_masking_needs_marked_pieces() -> None:
    ids, mask = batch(rows=2)
    with pytest.raises(ValueError, match="whole-word"):
        mask_tokens(ids, mask, vocabulary(), whole_word=True)


def test_head_is_tied_to_the_embeddings_and_the_loss_reads_masked_positions_only() -> None:
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    backbone = BertModel(config).eval()  # no dropout: the two passes must agree
    head = MaskedLMHead(16, 40)
    assert sum(p.numel() for p in head.parameters()) == 16 * 16 + 16 + 2 * 16 + 40  # no |V| x d decoder of its own
    ids, mask = batch(rows=4)
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[:, 3] = ids[:, 3]
    loss = masked_lm_loss(backbone, head, ids, mask, labels)
    loss.backward()
    assert backbone.get_input_embeddings().weight.grad is not None  # the decoder is E itself
    hidden = backbone(input_ids=ids, attention_mask=mask).last_hidden_state[:, 3]
    expected = torch.nn.functional.cross_entropy(head(hidden, backbone.get_input_embeddings().weight), ids[:, 3])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
