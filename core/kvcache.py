"""A KV cache that appends in place: decoding a token copies only that token's keys and values.

transformers' ``DynamicCache`` appends each new token with ``torch.cat``, which copies every layer's
whole cache at every decoding step. For SmolLM2-135M that is 46 KB per cached token (30 layers, keys
and values of 3 heads of 64), so a batch of 128 rows with 250 tokens each copies about 1.5 GB per
step. ``GrowingCache`` keeps each layer's keys and values in a buffer with room to spare on the
sequence axis and hands attention a view of the filled part; a buffer grows by a block when it is
full. Attention sees the same values, so outputs are unchanged.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

SPARE = 48  # tokens of room a buffer gets whenever it has to grow (about one sentence)


class GrowingLayer(DynamicLayer):
    """``DynamicLayer`` whose ``keys``/``values`` are views of buffers with room to append."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._buf: tuple[torch.Tensor, torch.Tensor] | None = None

    def _backed(self) -> bool:
        """Whether ``keys``/``values`` are still the front of the buffers (``crop`` keeps that;
        anything that assigns new tensors does not, and the next update copies them once)."""
        buf = self._buf
        return (buf is not None and self.keys is not None and self.keys.numel() > 0
                and self.keys.data_ptr() == buf[0].data_ptr() and self.values.data_ptr() == buf[1].data_ptr()
                and self.keys.shape[0] == buf[0].shape[0] and self.keys.stride() == buf[0].stride())

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        n = self.get_seq_length()
        add = key_states.shape[-2]
        if not (self._backed() and n + add <= self._buf[0].shape[-2]):
            b, h, _, d = key_states.shape
            keys = key_states.new_empty(b, h, n + add + SPARE, d)
            values = value_states.new_empty(b, h, n + add + SPARE, value_states.shape[-1])
            if n:
                keys[:, :, :n] = self.keys
                values[:, :, :n] = self.values
            self._buf = (keys, values)
        keys, values = self._buf
        keys[:, :, n:n + add] = key_states
        values[:, :, n:n + add] = value_states
        self.keys, self.values = keys[:, :, :n + add], values[:, :, :n + add]
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep the ``indices`` rows, with their room to append."""
        n = self.get_seq_length()
        if n and self._backed():
            self._buf = (self._buf[0][indices], self._buf[1][indices])
            self.keys, self.values = self._buf[0][:, :, :n], self._buf[1][:, :, :n]
        else:
            super().batch_select_indices(indices)


class GrowingCache(DynamicCache):
    """A ``DynamicCache`` of ``GrowingLayer``s; ``data``: (keys, values) per layer to start from."""

    def __init__(self, data: list[tuple[torch.Tensor, torch.Tensor]] | None = None):
        if data is None:
            Cache.__init__(self, layer_class_to_replicate=GrowingLayer)
            return
        layers = []
        for keys, values in data:
            layer = GrowingLayer()
            layer.update(keys, values)
            layers.append(layer)
        Cache.__init__(self, layers=layers)
