"""Configs of the trainable scorers: the EPITOME classifier, the coherence classifier and the
reverse (response -> seeker) model used by the mutual-information reward."""

from __future__ import annotations

from dataclasses import dataclass, field


def _h(text: str, default=None, factory=None):
    if factory is not None:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})


@dataclass
class EpitomeConfig:
    backbone: str = _h("encoder name or path: minilm (offline default), mpnet, roberta-base (paper)", "minilm")
    max_len: int = _h("tokens kept of seeker post and of response, each (paper: 64)", 64)
    shared_encoder: bool = _h("one encoder for seeker and response instead of two", False)
    finetune: str = _h("lora | full: how the backbone is trained", "lora")
    lora_r: int = _h("LoRA rank when finetune=lora", 16)
    batch_size: int = _h("training batch size", 32)
    lr: float = _h("learning rate", 2e-4)
    epochs: int = _h("maximum epochs", 12)
    patience: int = _h("early stopping: epochs without dev macro-F1 gain", 3)
    lambda_ei: float = _h("weight of the level (empathy identification) loss", 1.0)
    lambda_re: float = _h("weight of the rationale extraction loss", 0.5)
    dropout: float = _h("dropout in the heads", 0.1)
    seed: int = _h("training seed", 42)
    split_seed: int = _h("seed of the grouped train/dev/test split", 13)


@dataclass
class CoherenceConfig:
    backbone: str = _h("encoder name or path for the sentence-pair classifier", "minilm")
    max_len: int = _h("tokens per sentence pair", 96)
    finetune: str = _h("lora | full", "lora")
    lora_r: int = _h("LoRA rank", 8)
    batch_size: int = _h("training batch size", 32)
    lr: float = _h("learning rate", 3e-4)
    epochs: int = _h("training epochs", 2)
    max_pairs: int = _h("cap on training pairs (positives + negatives)", 40000)
    seed: int = _h("seed", 42)


@dataclass
class ReverseConfig:
    backbone: str = _h("causal LM to adapt for response -> seeker (defaults to the policy's)", "")
    lora_r: int = _h("LoRA rank", 8)
    max_len: int = _h("tokens per (response, seeker) example", 192)
    batch_size: int = _h("training batch size", 8)
    lr: float = _h("learning rate", 3e-4)
    epochs: int = _h("training epochs", 1)
    max_examples: int = _h("cap on training examples", 4000)
    seed: int = _h("seed", 42)
