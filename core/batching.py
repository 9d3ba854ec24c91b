"""Token-id lists to padded tensors: the one padding rule of the toolkit's batched model calls."""

from __future__ import annotations


def pad_ids(seqs: list[list[int]], pad_id: int, left: bool = False):
    """(input_ids, attention_mask), both [len(seqs), longest] long tensors: each sequence at the start of
    its row (``left``: at the end, for decoding), mask 1 on its tokens; empty sequences are all padding."""
    import torch  # core loads nothing heavy at import time

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        where = slice(width - len(s), width) if left else slice(0, len(s))
        ids[i, where] = torch.tensor(s, dtype=torch.long)
        mask[i, where] = 1
    return ids, mask
