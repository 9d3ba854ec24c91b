"""A bounded least-recently-used map, so scores computed once are not computed again."""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Hashable, Iterable


class LRUCache:
    def __init__(self, size: int = 100_000):
        self.size = size
        self._data: OrderedDict = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def get_many(self, keys: list[Hashable], compute: Callable[[list[Hashable]], Iterable]) -> list:
        """Values for ``keys``; the distinct missing ones are computed in ONE ``compute`` call."""
        missing = list(dict.fromkeys(k for k in keys if k not in self._data))
        self.hits += len(keys) - sum(1 for k in keys if k in missing)
        self.misses += len(missing)
        if missing:
            values = list(compute(missing))
            if len(values) != len(missing):
                raise ValueError(f"computed {len(values)} values for {len(missing)} keys")
            fresh = dict(zip(missing, values))
        else:
            fresh = {}
        out = []
        for k in keys:
            if k in fresh:
                v = fresh[k]
            else:
                v = self._data[k]
                self._data.move_to_end(k)
            out.append(v)
        for k, v in fresh.items():
            self._data[k] = v
        while self.size and len(self._data) > self.size:
            self._data.popitem(last=False)
        return out

    def clear(self) -> None:
        self._data.clear()
