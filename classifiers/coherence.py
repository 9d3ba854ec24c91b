"""Sentence-pair coherence classifier: p(two sentences belong to one response).

The paper's r_c (§5.5, Eq. 3) averages p(coherent) between a candidate sentence and the sentences
of the edit window; the authors used a RoBERTa pair classifier whose weights and training code were
never released. Here: a small sentence encoder (MiniLM by default) with LoRA adapters embeds each
sentence (mean pooling, as MiniLM was trained), and a linear 2-way head reads the symmetric pair
features [u + v, |u − v|, u ⊙ v] (SBERT's classification objective, made order-free: coherence of
two sentences does not depend on which comes first). ``p(coherent) = softmax(logits)[1]`` (the
authors' code took a sigmoid of one logit: partner-method.md §2.2).

Why not a cross-encoder over "a [SEP] b": MiniLM was pre-trained to embed single sentences, and on
a 2-core CPU budget (a few thousand pairs) a LoRA cross-encoder stayed at chance (train loss 0.687
after 70 steps), while the bi-encoder starts from MiniLM's topical similarity. It is also cheaper
at reward time: each distinct sentence is embedded once per call, however many pairs it is in.

Folder layout (``save`` / ``CoherenceScorer.load``)::

    coherence.json        backbone, max_len, finetune, metrics
    adapter/              PEFT LoRA adapter (finetune=lora)   or   encoder/ (finetune=full)
    head.safetensors      the classification head
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path

from core.jsonio import atomic_write_json
from core.registry import load_encoder

from .coherence_data import collect_docs, make_pairs
from .reverse import tidy_adapter

log = logging.getLogger(__name__)

LORA_TARGETS = ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]


def default_path() -> Path:
    return Path(__file__).resolve().parent.parent / "models" / "coherence"


def _device(device):
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def _build(backbone: str, finetune: str, lora_r: int):
    """(encoder, head, tokenizer): the encoder wrapped in LoRA when finetune=lora."""
    import torch

    encoder, tok = load_encoder(backbone)
    if finetune == "lora":
        from peft import LoraConfig, get_peft_model

        targets = [t for t in LORA_TARGETS if any(n.endswith(t) for n, _ in encoder.named_modules())]
        if not targets:  # not a BERT-style naming: let peft pick every linear layer
            targets = "all-linear"
        encoder = get_peft_model(encoder, LoraConfig(r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.05,
                                                     target_modules=targets))
    head = _head(encoder.config.hidden_size, cosine_init=True)
    return encoder, head, tok


COSINE_SCALE, COSINE_THRESHOLD = 10.0, 0.3


def _head(hidden: int, cosine_init: bool = False):
    """Linear 2-way head over [û + v̂, |û − v̂|, û ⊙ v̂] (unit-length embeddings).

    ``cosine_init`` starts it as the rule "coherent iff cos(u, v) > 0.3" (the u ⊙ v block sums to the
    cosine): frozen MiniLM cosine already separates held-out pairs (ROC-AUC ~0.74 on EPITOME dev),
    so training refines a sensible classifier instead of starting from chance.
    """
    import torch

    head = torch.nn.Linear(3 * hidden, 2)
    if cosine_init:
        with torch.no_grad():
            head.weight.mul_(0.01)
            head.bias.zero_()
            head.weight[1, 2 * hidden:] += COSINE_SCALE / 2
            head.weight[0, 2 * hidden:] -= COSINE_SCALE / 2
            head.bias[1] -= COSINE_SCALE * COSINE_THRESHOLD / 2
            head.bias[0] += COSINE_SCALE * COSINE_THRESHOLD / 2
    return head


def _embed(encoder, tok, sentences: list[str], max_len: int, device):
    """Unit-length mean-pooled token states of each sentence (padding masked)."""
    import torch

    batch = tok(sentences, truncation=True, max_length=max_len, padding=True, return_tensors="pt")
    batch = {k: v.to(device) for k, v in batch.items()}
    out = encoder(**batch)
    mask = batch["attention_mask"].unsqueeze(-1).to(out.last_hidden_state.dtype)
    pooled = (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    return torch.nn.functional.normalize(pooled, dim=-1)


def _pair_logits(head, u, v):
    import torch

    return head(torch.cat([u + v, (u - v).abs(), u * v], dim=-1))


def _logits(encoder, head, tok, a: list[str], b: list[str], max_len: int, device):
    """Logits of each pair; every distinct sentence is embedded once."""
    uniq = list(dict.fromkeys(a + b))
    index = {s: i for i, s in enumerate(uniq)}
    emb = _embed(encoder, tok, uniq, max_len, device)
    ia = [index[s] for s in a]
    ib = [index[s] for s in b]
    return _pair_logits(head, emb[ia], emb[ib])


class CoherenceScorer:
    """``prob(sent_a, sent_b)``: p(coherent) for each pair; batched, no gradients, any device."""

    def __init__(self, encoder, head, tok, max_len: int = 96, device: str | None = None, meta: dict | None = None):
        self.device = _device(device)
        self.encoder = encoder.to(self.device).eval()
        self.head = head.to(self.device).eval()
        self.tok = tok
        self.max_len = max_len
        self.meta = meta or {}

    @classmethod
    def load(cls, path: str | Path | None = None, device: str | None = None) -> "CoherenceScorer":
        from safetensors.torch import load_file

        path = Path(path) if path else default_path()
        meta_file = path / "coherence.json"
        if not meta_file.exists():
            raise FileNotFoundError(f"no coherence model at {path} (expected coherence.json); "
                                    f"train one with `partner-train coherence`")
        meta = json.loads(meta_file.read_text())
        if meta.get("finetune", "lora") == "lora":
            from peft import PeftModel

            base, tok = load_encoder(meta["backbone"])
            encoder = PeftModel.from_pretrained(base, str(path / "adapter"))
        else:
            encoder, tok = load_encoder(str(path / "encoder"))
        import torch

        head = _head(encoder.config.hidden_size)
        head.load_state_dict({k: v.float() for k, v in load_file(str(path / "head.safetensors")).items()})
        return cls(encoder, head, tok, meta.get("max_len", 96), device, meta)

    def logits(self, sent_a: list[str], sent_b: list[str], batch_size: int = 64):
        import torch

        if len(sent_a) != len(sent_b):
            raise ValueError(f"{len(sent_a)} first sentences but {len(sent_b)} second sentences")
        out = []
        with torch.no_grad():
            for i in range(0, len(sent_a), batch_size):
                out.append(_logits(self.encoder, self.head, self.tok, sent_a[i:i + batch_size],
                                   sent_b[i:i + batch_size], self.max_len, self.device).float().cpu())
        return torch.cat(out) if out else torch.zeros(0, 2)

    def prob(self, sent_a: list[str], sent_b: list[str], batch_size: int = 64) -> list[float]:
        if not sent_a:
            if sent_b:
                raise ValueError(f"0 first sentences but {len(sent_b)} second sentences")
            return []
        return self.logits(sent_a, sent_b, batch_size).softmax(-1)[:, 1].tolist()


# --------------------------------------------------------------------------------------------
# training


def evaluate(scorer: CoherenceScorer, pairs, batch_size: int = 64) -> dict:
    """Accuracy at 0.5 and ROC-AUC, overall and per corpus."""
    from sklearn.metrics import roc_auc_score

    probs = scorer.prob([p.a for p in pairs], [p.b for p in pairs], batch_size)

    def metrics(idx):
        y = [pairs[i].label for i in idx]
        s = [probs[i] for i in idx]
        acc = sum((pi >= 0.5) == bool(yi) for pi, yi in zip(s, y)) / max(len(y), 1)
        auc = roc_auc_score(y, s) if len(set(y)) == 2 else float("nan")
        return {"n": len(y), "accuracy": round(acc, 4), "roc_auc": round(float(auc), 4)}

    out = {"all": metrics(range(len(pairs)))}
    for corpus in sorted({p.corpus for p in pairs}):
        out[corpus] = metrics([i for i, p in enumerate(pairs) if p.corpus == corpus])
    return out


def train(cfg, out_dir: str | Path, data_dir=None, split_seed: int = 13, device: str | None = None,
          docs: dict | None = None) -> dict:
    """Train on the corpora's training parts, evaluate on the held-out parts, save to ``out_dir``.

    ``cfg`` is a classifiers.config.CoherenceConfig; ``docs`` ({"train", "heldout"} lists of
    coherence_data.Doc) replaces the corpora (tests). Returns the metadata written to coherence.json.
    """
    import torch
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    device = _device(device)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    docs = docs if docs is not None else collect_docs(data_dir, split_seed)
    train_pairs = make_pairs(docs["train"], cfg.seed, cfg.max_pairs, cfg.per_doc)
    held = make_pairs(docs["heldout"], cfg.seed + 1, cfg.max_heldout, cfg.per_doc)
    log.info("coherence pairs: %d train, %d held out (%s)", len(train_pairs), len(held),
             {c: sum(p.corpus == c for p in train_pairs) for c in sorted({p.corpus for p in train_pairs})})

    encoder, head, tok = _build(cfg.backbone, cfg.finetune, cfg.lora_r)
    # The starting point (frozen encoder, cosine-rule head) on the same held-out pairs: what training adds.
    baseline = evaluate(CoherenceScorer(encoder, head, tok, cfg.max_len, device), held)
    log.info("coherence held-out before training (cosine rule): %s", baseline["all"])
    encoder.to(device).train()
    head.to(device).train()
    params = [p for p in encoder.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    steps = cfg.epochs * math.ceil(len(train_pairs) / cfg.batch_size)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
    rng = random.Random(cfg.seed)
    start = time.time()
    bar = tqdm(total=steps, desc="coherence", unit="step")
    for epoch in range(cfg.epochs):
        order = list(range(len(train_pairs)))
        rng.shuffle(order)
        for i in range(0, len(order), cfg.batch_size):
            chunk = [train_pairs[j] for j in order[i:i + cfg.batch_size]]
            labels = torch.tensor([p.label for p in chunk], device=device)
            logits = _logits(encoder, head, tok, [p.a for p in chunk], [p.b for p in chunk], cfg.max_len, device)
            loss = torch.nn.functional.cross_entropy(logits, labels)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", epoch=epoch)
    bar.close()
    train_s = time.time() - start

    scorer = CoherenceScorer(encoder, head, tok, cfg.max_len, device)
    metrics = evaluate(scorer, held)
    log.info("coherence held-out: %s", metrics["all"])

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.finetune == "lora":
        encoder.save_pretrained(str(out / "adapter"))

        tidy_adapter(out / "adapter", cfg.backbone)
    else:
        encoder.save_pretrained(str(out / "encoder"))
        tok.save_pretrained(str(out / "encoder"))
    save_file({k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}, str(out / "head.safetensors"))
    meta = {"backbone": cfg.backbone, "max_len": cfg.max_len, "finetune": cfg.finetune, "lora_r": cfg.lora_r,
            "pooling": "mean", "pair_features": "[u+v, |u-v|, u*v]", "label": "softmax(logits)[1] = p(coherent)",
            "train_pairs": len(train_pairs), "heldout_pairs": len(held), "epochs": cfg.epochs,
            "train_seconds": round(train_s, 1), "heldout": metrics, "heldout_untrained": baseline,
            "data": "EPITOME Reddit train split (dev held out), CounselChat and ESConv grouped-hash train "
                    "(dev held out); test parts unused"}

    atomic_write_json(out / "coherence.json", meta)
    return meta
