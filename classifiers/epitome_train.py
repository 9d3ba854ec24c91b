"""Train the EPITOME model on the Reddit data: grouped split, seeded, early stopping on dev
macro-F1 (mean over mechanisms), best checkpoint saved as safetensors + config.json.

Context negatives (``cfg.negatives > 0``): each batch's seeker encodings are rolled by one, so
every response is also seen under another post at no extra encoder cost; those mismatched pairs
are supervised toward level 0 for ``cfg.negative_mechanisms`` and, with ``cfg.lambda_match``,
an auxiliary head learns matched vs mismatched. ``cfg.context_margin`` instead asks only for a gap:
a mechanism present in a real pair must score at least that much lower (in expected level) under
the other post.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import time
from pathlib import Path

import torch
from torch import nn

from core.corpora import EpitomePair, grouped_split, load_epitome
from core.jsonio import atomic_write_json
from core.registry import cache_dir

from .config import EpitomeConfig
from .epitome import EpitomeModel
from .epitome_metrics import macro_f1

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover
        pass


def splits(cfg: EpitomeConfig, data_dir=None) -> dict[str, list[EpitomePair]]:
    pairs, _ = load_epitome(data_dir)
    return grouped_split(pairs, lambda p: p.sp_id, seed=cfg.split_seed, folds=cfg.folds, fold=cfg.fold)


def class_weights(pairs: list[EpitomePair], mechanisms, how: str) -> torch.Tensor:
    """[M, 3] weights of the level cross-entropy: 1, or 1/sqrt(frequency) normalised to mean 1."""
    if how == "none":
        return torch.ones(len(mechanisms), 3)
    if how != "sqrt":
        raise ValueError(f"classifier.class_weights must be none or sqrt, got {how!r}")
    counts = torch.ones(len(mechanisms), 3)
    for p in pairs:
        for m, mech in enumerate(mechanisms):
            counts[m, p.levels[mech]] += 1
    w = counts.rsqrt()
    return w / w.mean(dim=1, keepdim=True)


@torch.no_grad()
def dev_scores(model, pairs: list[EpitomePair], batch_size: int, feats: FeatureCache | None = None) -> dict:
    model.eval()
    device = next(model.parameters()).device
    preds = []
    for s in range(0, len(pairs), batch_size):
        chunk = pairs[s:s + batch_size]
        batch = model.tokenize([p.seeker_post for p in chunk], [p.response_post for p in chunk])
        batch = {k: v.to(device) for k, v in batch.items() if k != "offsets"}
        e_resp, e_seek = encode_batch(model, batch, chunk, feats)
        preds.append(model.heads(e_resp, batch["resp_mask"], e_seek, batch.get("seek_mask"))["levels"].argmax(-1))
    model.train()
    pred = torch.cat(preds).cpu()
    scores = {mech: macro_f1([p.levels[mech] for p in pairs], pred[:, m].tolist())
              for m, mech in enumerate(model.mechanisms)}
    scores["mean"] = sum(scores.values()) / len(model.mechanisms)
    return scores


class FeatureCache:
    """The frozen parts' outputs, computed once per text: the input of the first trained response
    layer, and the frozen seeker encoder's final states. Kept on disk (keyed by backbone, max_len,
    layer and texts) so seeds and ablations that share them do not recompute."""

    def __init__(self, model, pairs: list[EpitomePair], batch_size: int = 64):
        import hashlib

        from safetensors.torch import load_file, save_file

        cfg = model.cfg
        self.resp_texts = sorted({p.response_post for p in pairs})
        self.seek_texts = sorted({p.seeker_post for p in pairs}) if (
            model.attention is not None and model.seeker_frozen) else []
        root = cache_dir() / "epitome-features"

        def cached(part: str, layer: int, texts: list[str], fn) -> torch.Tensor:
            h = hashlib.sha256(json.dumps([cfg.backbone, cfg.max_len, layer, texts]).encode()).hexdigest()[:16]
            path = root / f"{Path(cfg.backbone).name}-{cfg.max_len}-{part}-{h}.safetensors"
            if path.exists():
                return load_file(str(path))["x"]
            x = self._encode(model, texts, fn, batch_size, part)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            save_file({"x": x}, str(tmp))
            tmp.replace(path)
            return x

        data = {"resp": cached("response", model.first_trained, self.resp_texts, model.lower_response)}
        if self.seek_texts:
            data["seek"] = cached("seeker", -1, self.seek_texts, model.encode_seeker)
        self.resp = dict(zip(self.resp_texts, data["resp"].unbind(0)))
        self.seek = dict(zip(self.seek_texts, data["seek"].unbind(0))) if self.seek_texts else {}

    @staticmethod
    @torch.no_grad()
    def _encode(model, texts, fn, batch_size, what):
        from tqdm.auto import tqdm

        model.eval()
        out = torch.zeros(len(texts), model.cfg.max_len, model.level_out.shape[1], dtype=torch.float16)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        device = next(model.parameters()).device
        for s in tqdm(range(0, len(texts), batch_size), desc=f"caching frozen {what} features", unit=" batches"):
            idx = order[s:s + batch_size]
            t = model.tokenizer([texts[i] or "" for i in idx], truncation=True, max_length=model.cfg.max_len,
                                padding=True, return_tensors="pt")
            hs = fn(t["input_ids"].to(device), t["attention_mask"].to(device)).cpu().half()
            out[idx, :hs.shape[1]] = hs
        return out

    def batch(self, pairs, length_resp: int, length_seek: int | None, device):
        lower = torch.stack([self.resp[p.response_post][:length_resp] for p in pairs]).float().to(device)
        seek = None
        if self.seek:
            seek = torch.stack([self.seek[p.seeker_post][:length_seek] for p in pairs]).float().to(device)
        return lower, seek


def encode_batch(model, batch: dict, pairs, feats: FeatureCache | None):
    """(response states, seeker states) for a batch, from the feature cache where it has them."""
    if feats is None:
        return (model.encode_response(batch["resp_ids"], batch["resp_mask"]),
                model.encode_seeker(batch.get("seek_ids"), batch.get("seek_mask")))
    seek_len = batch["seek_ids"].shape[1] if "seek_ids" in batch else None
    lower, seek = feats.batch(pairs, batch["resp_ids"].shape[1], seek_len, batch["resp_ids"].device)
    e_resp = model.encode_response(mask=batch["resp_mask"], lower=lower) if model.first_trained else \
        model.encode_response(batch["resp_ids"], batch["resp_mask"])
    if seek is None:
        seek = model.encode_seeker(batch.get("seek_ids"), batch.get("seek_mask"))
    return e_resp, seek


def compute_loss(model, batch: dict, pairs: list[EpitomePair], weights: torch.Tensor,
                 feats: FeatureCache | None = None) -> tuple[torch.Tensor, dict]:
    cfg = model.cfg
    mechs = model.mechanisms
    e_resp, e_seek = encode_batch(model, batch, pairs, feats)
    out = model.heads(e_resp, batch["resp_mask"], e_seek, batch.get("seek_mask"))
    dev = out["levels"].device
    gold = torch.tensor([[p.levels[m] for m in mechs] for p in pairs], device=dev)  # [B, M]
    ce = nn.functional.cross_entropy
    loss_ei = sum(ce(out["levels"][:, m], gold[:, m], weight=weights[m]) for m in range(len(mechs))) / len(mechs)
    rat = out["rationales"]  # [B, M, L, 2]
    loss_re = ce(rat.reshape(-1, 2), batch["rationale_labels"].reshape(-1), ignore_index=-100)
    loss = cfg.lambda_ei * loss_ei + cfg.lambda_re * loss_re
    parts = {"ei": float(loss_ei.detach()), "re": float(loss_re.detach())}
    if e_seek is not None and (cfg.negatives > 0 or cfg.lambda_match > 0 or cfg.context_margin > 0) and len(pairs) > 1:
        # Re-pair each response with the next pair's seeker post (a different post: groups are
        # whole seeker posts, but a post with two responses can sit next to itself; skip those).
        other = torch.roll(torch.arange(len(pairs)), 1)
        valid = torch.tensor([pairs[i].sp_id != pairs[j].sp_id for i, j in enumerate(other.tolist())], device=dev)
        other = other.to(dev)
        if valid.any():
            neg = model.heads(e_resp, batch["resp_mask"], e_seek[other], batch["seek_mask"][other])
            sel = [mechs.index(m) for m in cfg.negative_mechanisms if m in mechs]
            if cfg.negatives > 0 and sel:
                logits = neg["levels"][valid][:, sel].reshape(-1, 3)
                loss_neg = ce(logits, torch.zeros(len(logits), dtype=torch.long, device=dev))
                loss = loss + cfg.negatives * loss_neg
                parts["neg"] = float(loss_neg.detach())
            if cfg.lambda_match > 0:
                bce = nn.functional.binary_cross_entropy_with_logits
                logits = torch.cat([out["match"], neg["match"][valid]])
                target = torch.cat([torch.ones(len(pairs), device=dev), torch.zeros(int(valid.sum()), device=dev)])
                loss_m = bce(logits, target)
                loss = loss + cfg.lambda_match * loss_m
                parts["match"] = float(loss_m.detach())
            if cfg.context_margin > 0:
                # A ranking constraint, not a label: where a mechanism is present (gold level > 0),
                # its expected level under the response's own post must exceed that under another
                # post by the margin. Real pairs keep their labels; level-0 pairs are left alone.
                scale = torch.arange(3, dtype=torch.float32, device=dev)
                own = torch.softmax(out["levels"][valid][:, sel].float(), -1) @ scale  # [V, S]
                mis = torch.softmax(neg["levels"][valid][:, sel].float(), -1) @ scale
                present = gold[valid][:, sel] > 0
                if present.any():
                    loss_c = nn.functional.relu(cfg.context_margin - (own - mis)[present]).mean()
                    loss = loss + loss_c
                    parts["margin"] = float(loss_c.detach())
    return loss, parts


def train(cfg: EpitomeConfig, out_dir: str | Path, data_dir=None, encoder_factory=None,
          data: dict[str, list[EpitomePair]] | None = None, max_steps: int | None = None) -> dict:
    """Train, keep the best dev epoch, save it to ``out_dir``; returns the training summary.

    ``data`` (train/dev lists) replaces the corpus, and ``max_steps`` caps steps per epoch: both
    for tests.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    seed_everything(cfg.seed)
    data = data or splits(cfg, data_dir)
    train_pairs, dev_pairs = data["train"], data["dev"]
    model = EpitomeModel(cfg, encoder_factory=encoder_factory)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    feats = FeatureCache(model, train_pairs + dev_pairs, cfg.eval_batch_size) if (
        model.first_trained or model.seeker_frozen and model.attention is not None) else None
    weights = class_weights(train_pairs, model.mechanisms, cfg.class_weights).to(device)
    head_names = ("attention.", "level_", "rationale.", "match.")
    groups = [
        {"params": [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith(head_names)],
         "lr": cfg.lr},
        {"params": [p for n, p in model.named_parameters() if p.requires_grad and n.startswith(head_names)],
         "lr": cfg.head_lr},
    ]
    n_train = sum(p.numel() for g in groups for p in g["params"])
    log.info("classifier: %s, %d trainable parameters, %d train / %d dev pairs", cfg.backbone, n_train,
             len(train_pairs), len(dev_pairs))
    opt = torch.optim.AdamW(groups, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train_pairs) / cfg.batch_size)
    if max_steps:
        steps_per_epoch = min(steps_per_epoch, max_steps)
    total = steps_per_epoch * cfg.epochs
    warm = max(1, int(cfg.warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    gen = torch.Generator().manual_seed(cfg.seed)
    best, best_state, bad, history = -1.0, None, 0, []
    t0 = time.time()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        perm = torch.randperm(len(train_pairs), generator=gen).tolist()
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{cfg.epochs}", unit=" steps", dynamic_ncols=True)
        te = time.time()
        running = 0.0
        for step in bar:
            chunk = [train_pairs[i] for i in perm[step * cfg.batch_size:(step + 1) * cfg.batch_size]]
            batch = model.tokenize([p.seeker_post for p in chunk], [p.response_post for p in chunk],
                                   spans=[p.rationales for p in chunk])
            batch = {k: v.to(device) for k, v in batch.items() if k != "offsets"}
            loss, parts = compute_loss(model, batch, chunk, weights, feats)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
            opt.step()
            sched.step()
            running = 0.9 * running + 0.1 * float(loss.detach()) if step else float(loss.detach())
            bar.set_postfix(loss=f"{running:.3f}", **{k: f"{v:.3f}" for k, v in parts.items()})
        bar.close()
        dev = dev_scores(model, dev_pairs, cfg.eval_batch_size, feats)
        history.append({"epoch": epoch, "train_loss": running, "seconds": round(time.time() - te, 1),
                        **{f"dev_f1_{k}": round(v, 4) for k, v in dev.items()}})
        log.info("epoch %d: loss %.3f, dev macro-F1 %s (%.0f s)", epoch, running,
                 {k: round(100 * v, 2) for k, v in dev.items()}, time.time() - te)
        if dev["mean"] > best:
            best, bad = dev["mean"], 0
            best_state = {k: v.detach().clone().cpu() for k, v in model.trainable_state().items()}
            best_epoch = epoch
            # Saved as it improves, so an interrupted run still leaves its best epoch behind.
            model.save(out_dir, extra={"training": {"best_epoch": epoch, "best_dev_macro_f1": round(best, 4),
                                                    "history": history, "complete": False}})
        else:
            bad += 1
            if bad >= cfg.patience:
                log.info("early stop: no dev gain for %d epochs", bad)
                break
    model.load_state_dict(best_state, strict=False)
    summary = {"best_epoch": best_epoch, "best_dev_macro_f1": round(best, 4), "history": history,
               "train_seconds": round(time.time() - t0, 1), "trainable_parameters": n_train,
               "train_pairs": len(train_pairs), "dev_pairs": len(dev_pairs)}
    model.save(out_dir, extra={"training": summary})
    atomic_write_json(out_dir / "training.json", {"config": dataclasses.asdict(cfg), **summary})
    return summary
