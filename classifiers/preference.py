"""A preference reward model: r(seeker post, reply) -> a score raters' choices follow.

A cross-encoder (the seeker post and the reply in one input, ``[CLS] post [SEP] reply [SEP]``)
with a scalar head, trained Bradley-Terry on pairs of replies to the same post: the probability
that a rater prefers reply a to reply b is ``sigmoid(r(post, a) - r(post, b))``. Training uses
TRL's ``RewardTrainer``: the pairs are tokenised here into its ``chosen_ids`` / ``rejected_ids``
columns, so any sequence-classification encoder rides on it; a small subclass adds what its
loss lacks, a soft target (0.5 for a tie) and a weight per pair (auxiliary questions).

The saved folder holds ``preference.json`` (format, config, training record) and, for LoRA,
``adapter_model.safetensors`` + ``adapter_config.json`` (the adapter and the head only: the base
encoder comes from the registry when the model loads), or for full fine-tuning a
``save_pretrained`` folder in ``encoder/``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from .config import PreferenceConfig
from core.batching import pad_ids
from core.configuration import from_dict

log = logging.getLogger(__name__)

FORMAT = "partner-preference/1"
SHIPPED = Path(__file__).resolve().parent.parent / "models" / "preference"


@dataclass
class PairExample:
    """One training pair: ``chosen`` is the reply the rater picked (or side A of a tie)."""

    seeker_post: str
    chosen: str
    rejected: str
    target: float = 1.0     # P(chosen preferred): 1 for a decisive answer, 0.5 for a tie
    weight: float = 1.0     # loss weight (auxiliary questions weigh less than overall)


def _device(device: str | None) -> str:
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def encode(tokenizer, seeker_posts: Sequence[str], replies: Sequence[str], max_len: int) -> list[list[int]]:
    """Token ids of (post, reply) pairs, the longer of the two cut first, so both stay in view."""
    enc = tokenizer(list(seeker_posts), list(replies), truncation="longest_first", max_length=max_len)
    return enc["input_ids"]


def _lora_targets(model, top_layers: int = 0) -> list[str]:
    """The linear layers of the encoder, in its top ``top_layers`` layers only when > 0 (the pooler above
    them always); the head is trained in full, not through LoRA."""
    import re

    import torch.nn as nn

    n_layers = model.config.num_hidden_layers
    out = []
    for name, m in model.named_modules():
        if not isinstance(m, nn.Linear) or name.startswith(("classifier", "score")):
            continue
        layer = re.search(r"\.layers?\.(\d+)\.", name)
        if top_layers and layer and int(layer.group(1)) < n_layers - top_layers:
            continue
        out.append(name)
    return out


def _base_model(backbone: str):
    from transformers import AutoModelForSequenceClassification

    from core.registry import _hub_error, load_tokenizer, resolve

    tok = load_tokenizer(backbone)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(resolve(backbone), num_labels=1)
    except OSError as exc:
        raise _hub_error(backbone, exc) from exc
    model.config.pad_token_id = tok.pad_token_id
    return model, tok


class PreferenceModel:
    """Scores replies to seeker posts; higher = raters prefer it (Bradley-Terry logit scale)."""

    def __init__(self, model, tokenizer, config: PreferenceConfig, device: str = "cpu", meta: dict | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = config
        self.device = device
        self.meta = meta or {}

    @classmethod
    def from_pretrained(cls, path_or_dir: str | Path | None = None, device: str | None = None) -> "PreferenceModel":
        import torch

        from core.jsonio import DataError

        path = Path(path_or_dir) if path_or_dir else SHIPPED
        cfg_file = path / "preference.json"
        if not cfg_file.exists():
            raise FileNotFoundError(f"{path} is not a preference model folder (no preference.json); train one with "
                                    "`partner-train preference`")
        meta = json.loads(cfg_file.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise DataError(cfg_file, None, "format", f"is {meta.get('format')!r}; expected {FORMAT!r}")
        cfg = from_dict(PreferenceConfig, meta["config"], str(cfg_file))
        dev = _device(device)
        if cfg.finetune == "full":
            model, tok = _base_model(str(path / "encoder"))
        else:
            from peft import PeftModel

            model, tok = _base_model(cfg.backbone)
            model = PeftModel.from_pretrained(model, str(path)).merge_and_unload()
        model.to(dev)
        torch.set_grad_enabled(True)  # merge_and_unload leaves it as it was; scoring uses no_grad itself
        return cls(model, tok, cfg, dev, meta)

    def score(self, seeker_posts: list[str], replies: list[str], batch_size: int = 32) -> list[float]:
        import torch

        if len(seeker_posts) != len(replies):
            raise ValueError(f"{len(seeker_posts)} seeker posts but {len(replies)} replies")
        ids = encode(self.tokenizer, seeker_posts, replies, self.config.max_len)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths together: less padding
        out = [0.0] * len(ids)
        pad = self.tokenizer.pad_token_id
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                x, mask = pad_ids([ids[i] for i in idx], pad)
                logits = self.model(input_ids=x.to(self.device), attention_mask=mask.to(self.device)).logits
                for row, i in enumerate(idx):
                    out[i] = float(logits[row, 0])
        return out

    def win_prob(self, seeker_posts: list[str], replies_a: list[str], replies_b: list[str],
                 batch_size: int = 32) -> list[float]:
        """P(a rater prefers reply a to reply b) = sigmoid(score_a - score_b)."""
        if not (len(seeker_posts) == len(replies_a) == len(replies_b)):
            raise ValueError("seeker_posts, replies_a and replies_b must have the same length")
        n = len(seeker_posts)
        s = self.score(list(seeker_posts) * 2, list(replies_a) + list(replies_b), batch_size)
        return [1.0 / (1.0 + math.exp(-(s[i] - s[n + i]))) for i in range(n)]


def _trainer_class():
    """RewardTrainer with a soft target and a weight per pair (its own loss has a margin, neither of these)."""
    import torch
    import torch.nn.functional as F
    from trl import RewardTrainer
    from trl.trainer.reward_trainer import DataCollatorForPreference

    class PairCollator(DataCollatorForPreference):
        def torch_call(self, examples):
            out = super().torch_call(examples)
            out["target"] = torch.tensor([e["target"] for e in examples], dtype=torch.float)
            out["weight"] = torch.tensor([e["weight"] for e in examples], dtype=torch.float)
            return out

    class PairRewardTrainer(RewardTrainer):
        def _set_signature_columns_if_needed(self):
            if self._signature_columns is None:
                self._signature_columns = ["chosen_ids", "rejected_ids", "target", "weight"]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            target, weight = inputs.pop("target"), inputs.pop("weight")
            logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits.squeeze(-1)
            chosen, rejected = torch.chunk(logits, chunks=2)
            d = chosen - rejected
            # Bradley-Terry with a soft target: t log s(d) + (1 - t) log s(-d); t = 1 is RewardTrainer's loss
            nll = -(target * F.logsigmoid(d) + (1 - target) * F.logsigmoid(-d))
            loss = (weight * nll).sum() / weight.sum()
            if self.args.center_rewards_coefficient:
                loss = loss + self.args.center_rewards_coefficient * torch.mean((chosen + rejected) ** 2)
            mode = "train" if self.model.training else "eval"
            decisive = target != 0.5
            if decisive.any():
                self._metrics[mode]["accuracy"].append((d[decisive] > 0).float().mean().item())
            self._metrics[mode]["margin"].append(d.mean().item())
            return (loss, {"rewards_chosen": chosen, "rewards_rejected": rejected}) if return_outputs else loss

    return PairRewardTrainer, PairCollator


def _portable_adapter(out: Path, backbone: str) -> None:
    """PEFT records the base model's absolute path on this machine and writes a blank model card; the
    loader reads the backbone from preference.json, so the adapter config names it as configured
    (``minilm``) and the blank card goes."""
    import json

    conf = out / "adapter_config.json"
    data = json.loads(conf.read_text())
    data["base_model_name_or_path"] = backbone
    conf.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    card = out / "README.md"
    if card.exists() and "<!-- Provide a quick summary" in card.read_text():
        card.unlink()


def train(cfg: PreferenceConfig, examples: list[PairExample], out: str | Path,
          record: dict[str, Any] | None = None, max_steps: int = -1) -> "PreferenceModel":
    """Train on ``examples`` and save to ``out``; ``record`` (data, split, eval) goes into preference.json."""
    import tempfile

    import torch
    from datasets import Dataset
    from trl import RewardConfig

    from core.jsonio import atomic_write_json

    if cfg.finetune not in ("lora", "full"):
        raise ValueError(f"preference.finetune is {cfg.finetune!r}; expected lora or full")
    if not examples:
        raise ValueError("no training pairs")
    torch.manual_seed(cfg.seed)
    model, tok = _base_model(cfg.backbone)
    peft_config = None
    if cfg.finetune == "lora":
        from peft import LoraConfig, TaskType

        peft_config = LoraConfig(task_type=TaskType.SEQ_CLS, r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                 lora_dropout=0.0, target_modules=_lora_targets(model, cfg.lora_layers),
                                 modules_to_save=["classifier"] if hasattr(model, "classifier") else ["score"])
    chosen = encode(tok, [e.seeker_post for e in examples], [e.chosen for e in examples], cfg.max_len)
    rejected = encode(tok, [e.seeker_post for e in examples], [e.rejected for e in examples], cfg.max_len)
    data = Dataset.from_dict({"chosen_ids": chosen, "rejected_ids": rejected,
                              "target": [e.target for e in examples], "weight": [e.weight for e in examples]})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    Trainer, Collator = _trainer_class()
    with tempfile.TemporaryDirectory(prefix=".trainer.", dir=out) as scratch:
        args = RewardConfig(output_dir=scratch, per_device_train_batch_size=cfg.batch_size,
                            num_train_epochs=cfg.epochs, max_steps=max_steps, learning_rate=cfg.lr,
                            warmup_steps=cfg.warmup, lr_scheduler_type="linear", weight_decay=0.0,
                            center_rewards_coefficient=cfg.center or None, max_length=None, logging_steps=10,
                            save_strategy="no", report_to="none", seed=cfg.seed, data_seed=cfg.seed,
                            gradient_checkpointing=False, disable_tqdm=False, dataloader_num_workers=0,
                            use_cpu=not torch.cuda.is_available(),
                            # TRL turns bf16 autocast on by default; a CPU without native bf16 (no AVX512-BF16 /
                            # AMX) then emulates it, ~20x slower than float32 (measured: 93 s per step on a
                            # 2-core AMD EPYC), so bf16 only where CUDA runs it natively
                            bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported())
        trainer = Trainer(model=model, args=args, train_dataset=data, processing_class=tok,
                          data_collator=Collator(pad_token_id=tok.pad_token_id), peft_config=peft_config)
        result = trainer.train()
        history = [h for h in trainer.state.log_history if "loss" in h]
        model = trainer.model
    model.eval()
    if cfg.finetune == "lora":
        model.save_pretrained(str(out))  # adapter_model.safetensors + adapter_config.json (adapter and head only)
        _portable_adapter(out, cfg.backbone)
        merged = model.merge_and_unload()
    else:
        model.save_pretrained(str(out / "encoder"))
        tok.save_pretrained(str(out / "encoder"))
        merged = model
    meta = {"format": FORMAT, "config": asdict(cfg),
            "training": {"pairs": len(examples), "steps": result.global_step,
                         "train_loss": result.training_loss, "seconds": result.metrics.get("train_runtime"),
                         "history": history},
            **(record or {})}
    atomic_write_json(out / "preference.json", meta)
    return PreferenceModel(merged, tok, cfg, str(next(merged.parameters()).device), meta)


__all__ = ["FORMAT", "PairExample", "PreferenceModel", "SHIPPED", "encode", "train"]
