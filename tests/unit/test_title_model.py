"""The title member and its blend (``modelcore.models.title``, ``title_blend``) and the text
columns of the preprocessing contract: what the served model computes from code points."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modelcore.models import build_model
from modelcore.models.title import TitleNgrams, ngram_keys
from modelcore.models.title_blend import TitleBlend
from modelcore.preprocessing import TEXT_PADDING, FeaturePreprocessor, TextFeature

FEATURE = TextFeature("title", 16)


def codes(*titles: str) -> torch.Tensor:
    return torch.from_numpy(np.stack([FEATURE.encode(title) for title in titles]))


def test_text_columns_are_code_points_then_padding() -> None:
    assert FEATURE.encode("Añ").tolist() == [65.0, 241.0] + [TEXT_PADDING] * 14
    assert FEATURE.encode("").tolist() == [TEXT_PADDING] * 16
    assert FEATURE.encode("\U0001f3b8")[0] == 0x1F3B8  # beyond the BMP, still exact in float32
    with pytest.raises(ValueError, match="17 characters, over 16"):
        FEATURE.encode("x" * 17)


def test_a_preprocessor_with_text_passes_its_columns_through() -> None:
    plain = FeaturePreprocessor(("a", "b"), mean=(1.0, 2.0), std=(2.0, 4.0))
    titled = FeaturePreprocessor(("a", "b"), (1.0, 2.0), (2.0, 4.0), text_features=(FEATURE,))
    assert (plain.width, titled.width) == (2, 18)
    assert titled.text_columns("title") == slice(2, 18)
    rows = np.concatenate([np.array([[3.0, 6.0]], np.float32), FEATURE.encode("Hey")[None]], 1)
    out = titled.transform(rows)
    assert out[0, :2].tolist() == [1.0, 1.0]
    assert np.array_equal(out[0, 2:], rows[0, 2:])
    assert FeaturePreprocessor.from_dict(titled.to_dict()) == titled
    assert "text_features" not in plain.to_dict()  # older manifests keep their exact form
    with pytest.raises(ValueError, match=r"expected \(N, 18\) rows"):
        titled.transform(rows[:, :2])


def test_ngram_keys_ignore_ascii_and_latin1_case_and_padding() -> None:
    keys = ngram_keys(codes("Déjà Vu", "DÉJÀ VU", "déjà vu", ""), (1, 2, 3))
    assert torch.equal(keys[0], keys[1])
    assert torch.equal(keys[0], keys[2])
    assert (keys[3] == -1).all()
    # " déjà vu " framed by spaces: 9 unigrams, 8 bigrams, 7 trigrams; the rest is padding.
    assert int((keys[0] >= 0).sum()) == 9 + 8 + 7
    assert keys.shape[1] == (16 + 2) + (16 + 1) + 16


def tiny_member(titles: tuple[str, ...], seed: int = 0) -> TitleNgrams:
    keys = ngram_keys(codes(*titles), (1, 2, 3)).numpy()
    vocabulary = np.unique(keys[keys >= 0])
    member = TitleNgrams(16, (1, 2, 3), len(vocabulary), 4)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        member.vocabulary.copy_(torch.from_numpy(vocabulary))
        member.idf.copy_(torch.rand(len(vocabulary), generator=generator) + 1.0)
        member.scores.weight.copy_(torch.randn(len(vocabulary) + 1, 4, generator=generator))
        member.bias.copy_(torch.randn(4, generator=generator))
    return member.eval()


def test_the_bag_holds_each_known_ngram_once_with_l2_normalised_tf_idf_weights() -> None:
    member = tiny_member(("aaa b",))
    ids, weights = member.bag(codes("aaa b", "zzz"))
    keys = ngram_keys(codes("aaa b"), (1, 2, 3))[0]
    unique, counts = torch.unique(keys[keys >= 0], return_counts=True)
    positions = torch.searchsorted(member.vocabulary, unique)
    raw = (1.0 + torch.log(counts.float())) * member.idf[positions]
    expected = dict(zip(positions.tolist(), (raw / raw.norm()).tolist(), strict=True))
    present = ids[0] < member.vocabulary_size
    got = dict(zip(ids[0][present].tolist(), weights[0][present].tolist(), strict=True))
    assert int(present.sum()) == len(got) == len(expected)  # each n-gram once
    assert got == pytest.approx(expected, rel=1e-6)
    assert int(counts.max()) == 3  # "a" (and the framing space) three times: sublinear tf
    known = ids[1] < member.vocabulary_size  # "zzz" shares only the framing space
    assert weights[1][known].tolist() == [1.0]
    empty_ids, _ = member.bag(codes(""))
    assert not (empty_ids < member.vocabulary_size).any()
    assert torch.equal(member(codes(""))[0], member.bias.detach())  # no n-gram: the bias


def test_a_batch_gives_each_title_what_it_gets_alone() -> None:
    member = tiny_member(("Rock Anthem", "Jazz Night", "Nocturne"))
    titles = ("rock night", "NOCTURNE", "", "jazz anthem rock")
    together = member(codes(*titles))
    for index, title in enumerate(titles):
        torch.testing.assert_close(together[index], member(codes(title))[0])


def blend(seed: int = 0) -> TitleBlend:
    torch.manual_seed(seed)
    numeric = {
        "type": "mlp",
        "params": {"input_dim": 3, "num_classes": 4, "hidden_sizes": [8], "dropout": 0.0},
    }
    member = tiny_member(("Rock Anthem", "Jazz Night"), seed)
    title = {"max_length": 16, "ngram_sizes": [1, 2, 3], "vocabulary_size": member.vocabulary_size,
             "num_classes": 4}  # fmt: skip
    model = build_model(
        {
            "type": "title_blend",
            "params": {
                "numeric": numeric,
                "title": title,
                "numeric_features": 3,
                "numeric_weight": 0.8,
                "title_weight": 0.6,
            },
        }
    )
    assert isinstance(model, TitleBlend)
    model.title.load_state_dict(member.state_dict())
    with torch.no_grad():
        model.class_bias.copy_(torch.tensor([0.1, -0.2, 0.3, -0.2]))
    return model.eval()


def test_rows_without_a_title_get_the_numeric_logits_bit_for_bit() -> None:
    model = blend()
    numeric = torch.randn(4, 3)
    inputs = torch.cat([numeric, codes("Rock Anthem", "", "jazz", "")], dim=1)
    with torch.inference_mode():
        out = model(inputs)
        alone = model.numeric(numeric)
        bare = model(torch.cat([numeric, codes("", "", "", "")], dim=1))
    assert torch.equal(out[1], alone[1])
    assert torch.equal(out[3], alone[3])
    assert torch.equal(bare, alone)
    with torch.inference_mode():
        title = torch.log_softmax(model.title(codes("Rock Anthem", "jazz")), dim=1)
    expected = 0.8 * alone[[0, 2]] + 0.6 * title + model.class_bias
    torch.testing.assert_close(out[[0, 2]], expected)
    assert not torch.allclose(out[0], alone[0])
