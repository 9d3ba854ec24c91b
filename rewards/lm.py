"""Frozen causal LMs shared by the fluency and mutual-information rewards.

One ``FrozenLM`` per base-model name, loaded lazily on first use. When the reverse model's base is
the same name as the reference / forward LM (the default: everything is the policy backbone), the
reverse LoRA adapter is attached to that one model and switched off with peft's
``disable_adapter()`` for the forward and fluency terms: one copy of the weights in memory, not two.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from classifiers.reverse import prompted_target_logprobs, target_logprobs
from core.registry import load_causal_lm

log = logging.getLogger(__name__)


class FrozenLM:
    def __init__(self, name: str, device: str | None = None, reverse_path: str | Path | None = None,
                 model=None, tok=None):
        self.name = name
        self.device = device
        self.reverse_path = Path(reverse_path) if reverse_path else None
        self._model = model
        self._tok = tok
        self._has_adapter = False
        self._lock = threading.Lock()
        if model is not None:
            self._freeze()

    @classmethod
    def from_model(cls, model, tok, name: str = "custom") -> "FrozenLM":
        """Wrap an already loaded model (tests; a caller that holds the backbone already)."""
        return cls(name, model=model, tok=tok)

    # ---- loading -----------------------------------------------------------------------------

    def attach_reverse(self, path: str | Path) -> None:
        """Use the reverse adapter in ``path`` (a folder with reverse.json and adapter/)."""
        if self.reverse_path and Path(path) != self.reverse_path:
            raise ValueError(f"{self.name} already carries the reverse adapter {self.reverse_path}")
        self.reverse_path = Path(path)
        if self._model is not None and not self._has_adapter:
            self._load_adapter()

    def _freeze(self) -> None:
        self._model.eval()
        for p in self._model.parameters():
            p.requires_grad_(False)
        if self._tok.pad_token_id is None:
            self._tok.pad_token = self._tok.eos_token

    def _load(self) -> None:
        import torch

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        log.info("loading the frozen LM %s on %s", self.name, device)
        self._model, self._tok = load_causal_lm(self.name, device=device)
        self._freeze()
        if self.reverse_path is not None:
            self._load_adapter()

    def _load_adapter(self) -> None:
        from peft import PeftModel

        meta_file = self.reverse_path / "reverse.json"
        if not meta_file.exists():
            raise FileNotFoundError(f"no reverse model at {self.reverse_path} (expected reverse.json); "
                                    f"train one with `partner-train reverse`")
        meta = json.loads(meta_file.read_text())
        if meta.get("backbone") not in (None, self.name):
            log.warning("the reverse adapter in %s was trained on %s, not %s", self.reverse_path,
                        meta.get("backbone"), self.name)
        self._model = PeftModel.from_pretrained(self._model, str(self.reverse_path / "adapter"),
                                                adapter_name="reverse", is_trainable=False)
        self._freeze()
        self._has_adapter = True

    def ensure_loaded(self) -> "FrozenLM":
        with self._lock:
            if self._model is None:
                self._load()
            elif self.reverse_path is not None and not self._has_adapter:
                self._load_adapter()
        return self

    @property
    def model(self):
        return self.ensure_loaded()._model

    @property
    def tok(self):
        return self.ensure_loaded()._tok

    # ---- scoring -----------------------------------------------------------------------------

    def target_logprobs(self, encoded: list[tuple[list[int], int]], adapter: bool = False,
                        batch_size: int = 16, prompts=None) -> list[tuple[float, int]]:
        """(sum log p, n tokens) of each encoded sequence's target; the reverse adapter on or off.

        ``prompts``: a cache (``rewards.cache.LRUCache``) of prompt KV caches: each distinct prompt then
        runs once across calls (``classifiers.reverse.prompted_target_logprobs``); the cache must
        only ever see one adapter setting."""
        model = self.model
        pad = self._tok.pad_token_id

        def score():
            if prompts is None:
                return target_logprobs(model, encoded, pad, batch_size)
            return prompted_target_logprobs(model, encoded, pad, batch_size, prompts)

        if adapter:
            if not self._has_adapter:
                raise RuntimeError(f"{self.name} has no reverse adapter attached")
            return score()
        if self._has_adapter:
            try:
                with model.disable_adapter():
                    return score()
            finally:  # re-enabling the adapter marks its weights trainable again (peft); keep it frozen
                self._freeze()
        return score()
