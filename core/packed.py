"""Inference on the CPU with every Linear layer's weights packed once for oneDNN.

A plain ``nn.Linear`` on the CPU hands its weight to the matrix-multiply library on every call,
and the library lays it out (packs it) for its kernels each time. For a language model decoding a
batch of a few rows, that is a large part of each call (SmolLM2's LM head on 16 rows took about half
as long packed on the 2-core CPU). ``pack_linears`` does the packing once, when a model is loaded for
inference, with the oneDNN kernels PyTorch's own compiler uses for frozen CPU models
(``mkldnn._linear_pointwise``). The values are the same up to float rounding (1e-4 at most on
SmolLM2's logits); the rewrites in ``benchmarks/bench_rewrite.py`` are the same text, 6 % faster.

Only for frozen models on the CPU: packed weights have no gradient and cannot be saved. Where the
oneDNN ops are missing (another PyTorch build) the model is left as it is.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

log = logging.getLogger(__name__)

_BATCH_HINT = 16  # rows of a typical decoding pass; the packed layout is good for any batch


def available() -> bool:
    ops = getattr(torch.ops, "mkldnn", None)
    return (torch.backends.mkldnn.is_available() and ops is not None
            and hasattr(ops, "_reorder_linear_weight") and hasattr(ops, "_linear_pointwise"))


class PackedLinear(nn.Module):
    """``nn.Linear`` for inference, its weight packed once for oneDNN."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().float().contiguous()
        self.register_buffer("packed", torch.ops.mkldnn._reorder_linear_weight(weight, _BATCH_HINT), persistent=False)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, shape[-1]).float().contiguous(), self.packed, self.bias,
                                               "none", [], "")
        return y.reshape(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, packed for oneDNN"


def pack_linears(model: nn.Module) -> int:
    """Replace the fp32 ``nn.Linear`` layers of a frozen CPU model by ``PackedLinear``, in place;
    returns how many. A model on another device or dtype, or without oneDNN, is left alone (0)."""
    first = next(model.parameters(), None)
    if first is None or first.device.type != "cpu" or not available():
        return 0
    swaps = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if type(child) is nn.Linear and child.weight.dtype == torch.float32]
    for parent, name, child in swaps:
        setattr(parent, name, PackedLinear(child))
    if swaps:
        log.debug("packed %d Linear layers for oneDNN", len(swaps))
    return len(swaps)
