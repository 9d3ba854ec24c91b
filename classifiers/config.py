"""Configs of the trainable scorers: the EPITOME classifier, the coherence classifier and the
reverse (response -> seeker) model used by the mutual-information reward."""

from __future__ import annotations

from dataclasses import dataclass

from core.configuration import option as _h


@dataclass
class EpitomeConfig:
    backbone: str = _h("encoder name or path: minilm (offline default), mpnet, roberta-base (paper)", "minilm")
    max_len: int = _h("tokens kept of seeker post and of response, each (paper: 64)", 64, at_least=1)
    mechanisms: list[str] = _h("mechanisms with a head in this model (EPITOME: one model per mechanism)",
                               factory=lambda: ["ER", "IP", "EX"])
    context: str = _h("attention: response-to-seeker attention (EPITOME) | none: response only (ablation)",
                      "attention", choices=("attention", "none"))
    attn_dim: int = _h("inner width of the response-to-seeker attention (0 = the encoder's width, as "
                       "the released code)", 128, at_least=0)
    shared_encoder: bool = _h("one encoder for seeker and response instead of two", False)
    freeze_seeker: bool = _h("keep the seeker encoder frozen, as the released code does (ignored with "
                             "shared_encoder); in training its outputs are computed once and cached", True)
    train_layers: int = _h("top layers of the response encoder that are trained (LoRA or full); the ones "
                           "below stay frozen and are computed once and cached in training; 0 = all", 0, at_least=0)
    finetune: str = _h("lora | full | none: how the backbone's top train_layers are trained (none: frozen "
                       "encoders, only the attention and heads learn)",
                       "lora", choices=("lora", "full", "none"))
    lora_r: int = _h("LoRA rank when finetune=lora", 16, at_least=1)
    lora_alpha: int = _h("LoRA alpha", 32)
    pooling: str = _h("cls (paper) | cls_mean: [CLS] and the masked mean of the context-aware response", "cls_mean",
                      choices=("cls", "cls_mean"))
    class_weights: str = _h("none | sqrt: level cross-entropy weighted by 1/sqrt(class frequency)", "sqrt",
                            choices=("none", "sqrt"))
    batch_size: int = _h("training batch size", 32, at_least=1)
    eval_batch_size: int = _h("batch size for dev/test scoring", 64, at_least=1)
    lr: float = _h("learning rate of the backbone (LoRA or full)", 3e-4, above=0)
    head_lr: float = _h("learning rate of the attention and heads", 1e-3, above=0)
    warmup: float = _h("share of steps with linear warm-up", 0.06, at_least=0, at_most=1)
    epochs: int = _h("maximum epochs", 6, at_least=1)
    patience: int = _h("early stopping: epochs without dev macro-F1 gain", 3, at_least=0)
    lambda_ei: float = _h("weight of the level (empathy identification) loss", 1.0)
    lambda_re: float = _h("weight of the rationale extraction loss", 0.5)
    negatives: float = _h("context negatives: weight of the loss on mismatched (response, other seeker) pairs "
                          "(0 = off)", 0.0)
    negative_mechanisms: list[str] = _h("mechanisms supervised toward level 0 on mismatched pairs",
                                        factory=lambda: ["ER", "IP"])
    lambda_match: float = _h("weight of the auxiliary matched-vs-mismatched loss (0 = off)", 0.0)
    context_margin: float = _h("ranking loss on mismatched pairs: where a negative_mechanisms level is > 0, its expected "
                               "level under the own post must beat that under another post by this margin (0 = off)",
                               0.5)
    dropout: float = _h("dropout in the heads", 0.1, at_least=0, at_most=0.9)
    seed: int = _h("training seed", 42)
    split_seed: int = _h("seed of the grouped train/dev/test split", 13)
    folds: int = _h("k-fold cross-validation of the classifier: k folds by the same hash, fold `fold` is test, "
                    "the one before it dev (0 = the fixed 80:10:10 split; fold 9 of 10 is that split)", 0, at_least=0)
    fold: int = _h("the test fold when folds > 0 (0..folds-1)", 0, at_least=0)


@dataclass
class CoherenceConfig:
    backbone: str = _h("encoder name or path for the sentence-pair classifier", "minilm")
    max_len: int = _h("tokens kept of each sentence", 64, at_least=1)
    finetune: str = _h("lora | full", "lora", choices=("lora", "full"))
    lora_r: int = _h("LoRA rank", 8, at_least=1)
    batch_size: int = _h("training batch size", 16, at_least=1)
    lr: float = _h("learning rate", 5e-4, above=0)
    epochs: int = _h("training epochs", 1, at_least=1)
    max_pairs: int = _h("cap on training pairs (half positives, half negatives; 0 = all ~20k); "
                        "the default fits ~10 CPU minutes", 2000)
    per_doc: int = _h("cap on positive pairs drawn from one response", 4)
    max_heldout: int = _h("cap on held-out evaluation pairs", 800)
    seed: int = _h("seed", 42)


@dataclass
class ReverseConfig:
    backbone: str = _h("causal LM to adapt for response -> seeker (empty = the policy's backbone)", "")
    lora_r: int = _h("LoRA rank (attention and MLP projections)", 16, at_least=1)
    lora_layers: int = _h("LoRA only in the last N transformer layers (0 = all); backprop stops below them", 10,
                          at_least=0)
    max_context: int = _h("tokens kept of the response (the reverse model's context)", 64, at_least=1)
    max_target: int = _h("tokens kept of the seeker post (the scored target)", 48, at_least=1)
    batch_size: int = _h("training batch size", 8, at_least=1)
    lr: float = _h("learning rate", 1e-3, above=0)
    epochs: int = _h("training epochs", 1, at_least=1)
    max_examples: int = _h("cap on training examples (0 = all ~4.9k); the default fits ~12 minutes on 2 busy "
                           "CPU cores", 320)
    max_heldout: int = _h("cap on held-out examples for the perplexity report", 80)
    seed: int = _h("seed", 42)


@dataclass
class PreferenceConfig:
    ratings: str = _h("partner-ab studies to learn from: a folder of study folders (each with key.json, package/, "
                      "ratings/) or one study folder (empty = $PARTNER_DATA/ratings)", "")
    feedback: str = _h("partner-serve choice logs (its --log files), comma-separated: each suggestion a supporter "
                       "accepted is preferred to each one they dismissed for the same draft; training pairs only, "
                       "never held out (empty = none)", "")
    backbone: str = _h("cross-encoder over (seeker post, reply): minilm (default), mpnet, roberta-base, a folder",
                       "minilm")
    max_len: int = _h("tokens kept of seeker post + reply together (the longer one is cut first)", 256)
    finetune: str = _h("lora (saves only the adapter and the head) | full (saves the whole encoder)", "lora")
    lora_r: int = _h("LoRA rank on every linear layer of the encoder", 16)
    lora_alpha: int = _h("LoRA alpha", 32)
    lora_layers: int = _h("LoRA only in the top N encoder layers (0 = all); the backward pass then stops below them, "
                          "which is what makes CPU training fast", 0)
    ties: str = _h("overall ties: drop | half (a 0.5 Bradley-Terry target)", "drop")
    aux_questions: list[str] = _h("other questions whose decisive answers join as extra pairs, weighted by aux_weight",
                                  factory=list)
    aux_weight: float = _h("loss weight of an auxiliary-question pair (an overall pair weighs 1)", 0.3)
    epochs: float = _h("training epochs", 1.5)
    batch_size: int = _h("pairs per step (two sequences each)", 16)
    lr: float = _h("learning rate (LoRA wants more than full fine-tuning)", 1e-3)
    warmup: float = _h("share of steps of linear warm-up", 0.1)
    center: float = _h("RewardTrainer's center_rewards_coefficient: keeps scores near 0 (0 = off)", 0.01)
    heldout_fraction: float = _h("share of seeker posts held out, per source (EPITOME, ESConv), grouped by post", 0.22)
    split_seed: int = _h("seed of the held-out split", 13)
    folds: int = _h("grouped cross-validation: >= 2 deals each corpus's posts into this many folds and holds out "
                    "fold `preference.fold` instead of heldout_fraction (0 = off); `partner-eval preference --model` "
                    "with every fold's model pools them", 0, at_least=0)
    fold: int = _h("the fold held out when preference.folds >= 2 (0 to folds - 1)", 0, at_least=0)
    seed: int = _h("training seed", 42)
