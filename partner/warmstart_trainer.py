"""Supervised warm start of the policy (paper §5.6) on transformers' Trainer.

Loss per batch = LM cross-entropy on the target sentence's tokens (mean over tokens, EOS
included) + ``position_loss_weight`` × cross-entropy of the position head (masked to the classes
valid for each window). Stop examples have no sentence and contribute the position term only.
Both terms come from one teacher-forced pass (``PartnerPolicy.score``), the same code RL uses,
so what is trained is exactly what acts.

The Trainer brings the rest: devices through accelerate, AdamW with warmup and linear decay,
gradient accumulation and clipping, tensorboard logs, and checkpoints every ``save_steps``
(adapter or full weights + head in PEFT / safetensors format, plus optimizer state), from
which a re-run resumes. Held-out position accuracy and sentence perplexity are measured before
and after training.
"""

from __future__ import annotations

import logging
import math
import random
from pathlib import Path

import torch
from torch import nn

from core.jsonio import atomic_write_json

from . import edits as E
from .warmstart_data import WarmStartExample

log = logging.getLogger(__name__)


class WarmStartLoss(nn.Module):
    """The policy as a Trainer model: forward(batch) -> {"loss", "lm_loss", "position_loss"}."""

    def __init__(self, policy, position_loss_weight: float = 0.1):
        super().__init__()
        self.policy = policy
        self.position_loss_weight = float(position_loss_weight)

    def forward(self, seekers, windows, positions, sentence_ids):
        out = self.policy.score(seekers, windows, positions, sentence_ids)
        positions = torch.as_tensor(positions, dtype=torch.long, device=out["position_logits"].device)
        pos_loss = nn.functional.cross_entropy(out["position_logits"].float(), positions)
        n_tok = out["n_tokens"].sum()
        lm_loss = -out["logp_sentence"].sum() / n_tok.clamp(min=1)
        loss = lm_loss + self.position_loss_weight * pos_loss
        return {"loss": loss, "lm_loss": lm_loss.detach(), "position_loss": pos_loss.detach()}


def encode_examples(policy, examples: list[WarmStartExample]) -> list[dict]:
    """Examples as the Trainer's dataset rows (token ids of the target sentence + EOS)."""
    stop = E.stop_class(policy.k)
    return [{"seeker": e.seeker, "window": list(e.window), "position": int(e.position),
             "sentence_ids": [] if e.position == stop else policy.sentence_target_ids(e.sentence)}
            for e in examples]


def collate(rows: list[dict]) -> dict:
    return {"seekers": [r["seeker"] for r in rows], "windows": [r["window"] for r in rows],
            "positions": torch.tensor([r["position"] for r in rows], dtype=torch.long),
            "sentence_ids": [r["sentence_ids"] for r in rows]}


@torch.no_grad()
def evaluate(policy, examples: list[WarmStartExample], batch_size: int = 16) -> dict:
    """Held-out position accuracy (argmax vs gold, all examples), insert-slot accuracy on insert
    examples, and the target sentences' perplexity exp(token NLL) given the gold position."""
    was = policy.training
    policy.eval()
    rows = encode_examples(policy, examples)
    correct = correct_stop = n_stop = 0
    nll = tokens = 0.0
    for a in range(0, len(rows), batch_size):
        b = collate(rows[a:a + batch_size])
        out = policy.score(b["seekers"], b["windows"], b["positions"], b["sentence_ids"])
        pred = out["position_logits"].argmax(-1).cpu()
        correct += int((pred == b["positions"]).sum())
        is_stop = torch.tensor([len(s) == 0 for s in b["sentence_ids"]])
        n_stop += int(is_stop.sum())
        correct_stop += int(((pred == b["positions"]) & is_stop).sum())
        nll -= float(out["logp_sentence"].sum())
        tokens += float(out["n_tokens"].sum())
    policy.train(was)
    n = max(1, len(rows))
    n_ins = max(1, len(rows) - n_stop)
    return {"examples": len(rows), "position_accuracy": correct / n,
            "insert_position_accuracy": (correct - correct_stop) / n_ins,
            "stop_recall": correct_stop / max(1, n_stop),
            "sentence_perplexity": math.exp(nll / max(1.0, tokens)), "sentence_tokens": int(tokens)}


def _trainer_class():
    from transformers import Trainer

    class PolicyTrainer(Trainer):
        """Trainer that saves/loads the policy as adapter + head and logs the two loss terms."""

        _parts: dict = {}

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = model(**inputs)
            for k in ("lm_loss", "position_loss"):
                self._parts.setdefault(k, []).append(float(out[k]))
            return (out["loss"], out) if return_outputs else out["loss"]

        def log(self, logs, *args, **kwargs):
            for k, v in list(self._parts.items()):
                if v and "loss" in logs:
                    logs[k] = round(sum(v) / len(v), 4)
                    self._parts[k] = []
            super().log(logs, *args, **kwargs)

        def _save(self, output_dir=None, state_dict=None):
            output_dir = output_dir or self.args.output_dir
            self.accelerator.unwrap_model(self.model).policy.save_pretrained(output_dir)

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            log.info("resuming from %s", resume_from_checkpoint)
            self.accelerator.unwrap_model(model or self.model).policy.load_weights(resume_from_checkpoint)

    return PolicyTrainer


def train(policy, train_examples: list[WarmStartExample], heldout: list[WarmStartExample], wcfg, out_dir: str | Path,
          resume: bool = True) -> dict:
    """Fine-tune ``policy`` in place; returns the metrics (also in out_dir/metrics.json)."""
    from transformers import TrainingArguments
    from transformers.integrations import TensorBoardCallback
    from torch.utils.tensorboard import SummaryWriter

    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    random.Random(wcfg.seed).shuffle(train_examples)
    rows = encode_examples(policy, train_examples)
    metrics: dict = {"train_examples": len(rows), "heldout_examples": len(heldout)}
    before = evaluate(policy, heldout) if heldout else {}
    log.info("held-out before training: %s", before)
    args = TrainingArguments(
        output_dir=str(ckpt_dir), per_device_train_batch_size=wcfg.batch_size,
        gradient_accumulation_steps=wcfg.grad_accum, num_train_epochs=wcfg.epochs,
        max_steps=wcfg.max_steps if wcfg.max_steps > 0 else -1, learning_rate=wcfg.lr,
        warmup_steps=wcfg.warmup_steps, lr_scheduler_type="linear", weight_decay=0.0, max_grad_norm=1.0,
        logging_steps=wcfg.logging_steps, save_strategy="steps", save_steps=wcfg.save_steps, save_total_limit=2,
        report_to=[], remove_unused_columns=False, dataloader_num_workers=0, seed=wcfg.seed,
        disable_tqdm=False, use_cpu=not torch.cuda.is_available(),
    )
    writer = SummaryWriter(str(out / "tensorboard"))
    trainer = _trainer_class()(model=WarmStartLoss(policy, wcfg.position_loss_weight), args=args,
                               train_dataset=rows, data_collator=collate,
                               callbacks=[TensorBoardCallback(tb_writer=writer)])
    has_ckpt = resume and ckpt_dir.exists() and any(ckpt_dir.glob("checkpoint-*"))
    result = trainer.train(resume_from_checkpoint=True if has_ckpt else None)
    history = [h for h in trainer.state.log_history if "loss" in h]
    after = evaluate(policy, heldout) if heldout else {}
    log.info("held-out after training: %s", after)
    for name, value in after.items():
        if isinstance(value, float):
            writer.add_scalar(f"heldout/{name}", value, trainer.state.global_step)
    writer.close()
    metrics.update({"steps": trainer.state.global_step, "train_runtime_s": round(result.metrics.get("train_runtime", 0), 1),
                    "first_logged_loss": history[0]["loss"] if history else None,
                    "last_logged_loss": history[-1]["loss"] if history else None,
                    "loss_history": [{k: h.get(k) for k in ("step", "loss", "lm_loss", "position_loss")}
                                     for h in history],
                    "heldout_before": before, "heldout_after": after})
    atomic_write_json(out / "metrics.json", metrics)
    return metrics
