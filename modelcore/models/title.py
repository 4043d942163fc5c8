"""A track title's character n-grams, looked up in a learnt vocabulary: a linear text classifier.

The title reaches the model as Unicode code points, one float32 column each (exact: code points
are below 2^21), left-aligned and padded with -1 (``modelcore.preprocessing.TextFeature``).
Everything after that happens here, in torch, for training and serving alike:

- lower-casing (ASCII and Latin-1);
- character n-grams of the title framed by a space on each side, each hashed to 62 bits;
- the lookup of the hashes in the sorted ``vocabulary`` learnt from training titles (n-grams
  in fewer training titles than the trainer's minimum are not in it);
- TF-IDF weights: sublinear term frequency times ``idf``, L2-normalised;
- an ``nn.EmbeddingBag`` that sums each known n-gram's class scores.

So the module is a multinomial logistic regression on TF-IDF character n-grams, and a caller's
front-end only has to turn text into code points.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# Two 31-bit polynomial hashes (prime moduli, one multiplier each) make a 62-bit n-gram key:
# with a vocabulary of ~10^5 n-grams a collision is about a 10^-9 event.
_MODULI = (2_147_483_647, 2_147_483_629)
_MULTIPLIERS = (911_382_323, 972_663_749)
_SPACE = 32
# Upper-case ranges lowered by adding 32: ASCII A-Z and Latin-1 À-Þ (except ×, 215).
_UPPER = ((65, 90), (192, 222))
_TIMES = 215


def ngram_keys(codes: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """(B, L) code points (-1 padding, left-aligned) -> (B, G) int64 n-gram keys, -1 where a
    position holds no n-gram (every position of an empty title); G = sum over ``sizes`` of
    (L + 3 - n)."""
    codes = codes.to(torch.int64)
    lowered = codes
    for low, high in _UPPER:
        upper = (codes >= low) & (codes <= high) & (codes != _TIMES)
        lowered = torch.where(upper, codes + 32, lowered)
    batch, width = codes.shape
    lengths = (codes >= 0).sum(dim=1, keepdim=True)
    position = torch.arange(width + 2, device=codes.device)[None, :]
    inner = torch.cat([lowered[:, :1], lowered, lowered[:, :1]], dim=1)  # shifted by one
    framed = torch.where(
        position == 0,
        _SPACE,
        torch.where(position <= lengths, inner, torch.where(position == lengths + 1, _SPACE, -1)),
    )
    framed = torch.where(lengths > 0, framed, -1)  # no title, no n-grams (not even spaces)
    keys = []
    for size in sizes:
        count = width + 3 - size
        windows = torch.stack([framed[:, k : k + count] for k in range(size)], dim=0)
        valid = (windows >= 0).all(dim=0)
        parts = []
        for modulus, multiplier in zip(_MODULI, _MULTIPLIERS, strict=True):
            value = torch.full((batch, count), size, dtype=torch.int64, device=codes.device)
            for window in windows:
                value = (value * multiplier + window + 1) % modulus
            parts.append(value)
        key = parts[0] * (1 << 31) + parts[1]
        keys.append(torch.where(valid, key, -1))
    return torch.cat(keys, dim=1)


class TitleNgrams(nn.Module):
    """TF-IDF character n-grams of a title -> class scores, linear.

    Args:
        max_length: code-point columns per title (the longest title taken).
        ngram_sizes: n-gram lengths, e.g. (1, 2, 3, 4).
        vocabulary_size: known n-grams (the buffers' length; filled by ``load_state_dict``).
        num_classes: genres.
    """

    vocabulary: torch.Tensor
    idf: torch.Tensor

    def __init__(
        self,
        max_length: int,
        ngram_sizes: Sequence[int],
        vocabulary_size: int,
        num_classes: int,
    ) -> None:
        super().__init__()
        sizes = tuple(int(size) for size in ngram_sizes)
        if max_length < 1 or vocabulary_size < 1 or num_classes < 2:
            raise ValueError("max_length and vocabulary_size must be positive, classes >= 2")
        if not sizes or min(sizes) < 1 or len(set(sizes)) != len(sizes):
            raise ValueError("ngram_sizes must be distinct positive lengths")
        self.max_length, self.ngram_sizes = max_length, sizes
        self.vocabulary_size, self.num_classes = vocabulary_size, num_classes
        self.register_buffer("vocabulary", torch.zeros(vocabulary_size, dtype=torch.int64))
        self.register_buffer("idf", torch.zeros(vocabulary_size, dtype=torch.float32))
        # Row ``vocabulary_size`` is the padding row: unknown n-grams and empty slots.
        self.scores = nn.EmbeddingBag(
            vocabulary_size + 1, num_classes, mode="sum", padding_idx=vocabulary_size
        )
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def bag(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) code points -> (B, G) vocabulary ids of each distinct known n-gram (padding
        elsewhere) and their L2-normalised TF-IDF weights (0 elsewhere)."""
        longest = int((codes >= 0).sum(dim=1).max()) if codes.numel() else 0
        keys = ngram_keys(codes[:, : max(longest, 1)], self.ngram_sizes)  # past it: padding
        padding = self.vocabulary_size
        where = torch.searchsorted(self.vocabulary, keys).clamp(max=padding - 1)
        known = (keys >= 0) & (self.vocabulary[where] == keys)
        ids, _ = torch.where(known, where, padding).sort(dim=1)
        starts = torch.ones_like(ids, dtype=torch.bool)
        starts[:, 1:] = ids[:, 1:] != ids[:, :-1]
        segment = starts.cumsum(dim=1) - 1
        counts = torch.zeros(ids.shape, dtype=torch.float32, device=ids.device)
        counts.scatter_add_(1, segment, (ids != padding).to(torch.float32))
        distinct = torch.full_like(ids, padding).scatter_(1, segment, ids)
        present = counts > 0
        idf = self.idf[distinct.clamp(max=padding - 1)]
        weights = torch.where(present, (1.0 + torch.log(counts.clamp(min=1.0))) * idf, 0.0)
        norm = weights.square().sum(dim=1, keepdim=True).sqrt()
        weights = weights / norm.clamp(min=torch.finfo(torch.float32).tiny)
        return torch.where(present, distinct, padding), weights

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, max_length) code points -> (B, num_classes) logits (the bias alone for a title
        with no known n-gram)."""
        ids, weights = self.bag(codes)
        return self.scores(ids, per_sample_weights=weights) + self.bias  # type: ignore[no-any-return]
