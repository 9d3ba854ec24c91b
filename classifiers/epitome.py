"""The EPITOME empathy model (seed 000 §5.2): seeker and response encoders, response-to-seeker
attention with a residual, a level head (0/1/2) and a token rationale head per mechanism.

Differences from the released code (shared docs epitome-and-related-work.md §2.2), on purpose:

- the seeker's padding is masked in the attention (the released code attends to ``<pad>``);
- one model carries the heads of several mechanisms (``cfg.mechanisms``), so a pair costs one
  pass instead of three; ``mechanisms=["ER"]`` gives the paper's one-model-per-mechanism setup;
- the backbone is trained with LoRA adapters by default, so a checkpoint holds only adapters and
  heads (a few MB); ``finetune=full`` trains everything;
- ``context="none"`` drops the seeker side: the paper's "-seeker post" ablation.

Rationale labels follow seed 001's convention: a token is 1 when it overlaps an annotated span,
and level-0 responses have an empty mask (the released code marks the whole response instead).

A checkpoint folder holds ``config.json`` (the EpitomeConfig and the format version) and
``model.safetensors`` (the trainable tensors only: adapters and heads, or everything for full
fine-tuning); the base encoder comes from the registry at load time.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path

import torch
from torch import nn

from core.configuration import from_dict
from core.jsonio import atomic_write_json
from core.registry import load_encoder

from .config import EpitomeConfig

log = logging.getLogger(__name__)

FORMAT = "partner-epitome/1"
LORA_TARGETS = ["query", "key", "value", "dense"]


class SeekerAttention(nn.Module):
    """Single-head attention, queries from the response, keys/values from the seeker post.

    ``h = e_R + dropout(W_o softmax(q kᵀ / √d + mask) v)``: the residual of Eq. 3 with the
    projections of the released code, and a key-padding mask so padding is never attended.
    """

    def __init__(self, dim: int, dropout: float, attn_dim: int = 0):
        super().__init__()
        inner = attn_dim or dim  # a narrower inner width cuts the cost (and size) ~dim/attn_dim times
        self.q = nn.Linear(dim, inner)
        self.k = nn.Linear(dim, inner)
        self.v = nn.Linear(dim, inner)
        self.o = nn.Linear(inner, dim)
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)
        self.scale = 1.0 / math.sqrt(inner)

    def forward(self, resp: torch.Tensor, seek: torch.Tensor, seek_mask: torch.Tensor) -> torch.Tensor:
        scores = torch.matmul(self.q(resp), self.k(seek).transpose(1, 2)) * self.scale  # [B, Lr, Ls]
        scores = scores.masked_fill(~seek_mask.bool()[:, None, :], torch.finfo(scores.dtype).min)
        attn = torch.softmax(scores, dim=-1)
        return self.norm(resp + self.drop(self.o(torch.matmul(attn, self.v(seek)))))


class EpitomeModel(nn.Module):
    def __init__(self, cfg: EpitomeConfig, encoder_factory=None):
        """``encoder_factory()`` returns a fresh (AutoModel, tokenizer); default: the registry."""
        super().__init__()
        if encoder_factory is None:
            def encoder_factory():
                return load_encoder(cfg.backbone)

        self.cfg = cfg
        self.mechanisms = list(cfg.mechanisms)
        if cfg.context not in ("attention", "none"):
            raise ValueError(f"classifier.context must be attention or none, got {cfg.context!r}")
        if cfg.pooling not in ("cls", "cls_mean"):
            raise ValueError(f"classifier.pooling must be cls or cls_mean, got {cfg.pooling!r}")
        resp_enc, self.tokenizer = encoder_factory()
        self.num_layers = resp_enc.config.num_hidden_layers
        if cfg.finetune == "none":
            self.first_trained = self.num_layers
        else:
            self.first_trained = 0 if cfg.train_layers <= 0 else max(0, self.num_layers - cfg.train_layers)
        self.response_encoder = self._adapt(resp_enc)
        self.seeker_encoder = None
        self.seeker_frozen = cfg.freeze_seeker and not cfg.shared_encoder
        if cfg.context == "attention" and not cfg.shared_encoder:
            seek_enc = encoder_factory()[0]
            if self.seeker_frozen:
                seek_enc.requires_grad_(False)
                seek_enc.eval()
                self.seeker_encoder = seek_enc
            else:
                self.seeker_encoder = self._adapt(seek_enc)
        dim = resp_enc.config.hidden_size
        self.attention = SeekerAttention(dim, cfg.dropout, cfg.attn_dim) if cfg.context == "attention" else None
        pooled = dim * (2 if cfg.pooling == "cls_mean" else 1)
        m = len(self.mechanisms)
        # Level heads as in the released code (dense -> ReLU -> out), one per mechanism, batched.
        self.level_hidden = nn.Linear(pooled, dim * m)
        self.level_out = nn.Parameter(torch.empty(m, dim, 3))
        self.level_bias = nn.Parameter(torch.zeros(m, 3))
        nn.init.normal_(self.level_out, std=0.02)
        self.rationale = nn.Linear(dim, 2 * m)
        self.match = nn.Linear(pooled, 1)  # auxiliary "is this the response to this post?" head
        self.drop = nn.Dropout(cfg.dropout)

    def _adapt(self, encoder: nn.Module) -> nn.Module:
        """LoRA on (or full training of) layers >= first_trained; everything below stays frozen."""
        layers = list(range(self.first_trained, self.num_layers))
        if self.cfg.finetune == "none":
            return encoder.requires_grad_(False)
        if self.cfg.finetune == "full":
            encoder.requires_grad_(False)
            for i in layers:
                encoder.encoder.layer[i].requires_grad_(True)
            if self.first_trained == 0:
                encoder.requires_grad_(True)
            return encoder
        if self.cfg.finetune != "lora":
            raise ValueError(f"classifier.finetune must be lora, full or none, got {self.cfg.finetune!r}")
        from peft import LoraConfig, get_peft_model

        lcfg = LoraConfig(r=self.cfg.lora_r, lora_alpha=self.cfg.lora_alpha, lora_dropout=0.0,
                          target_modules=LORA_TARGETS, bias="none",
                          layers_to_transform=layers if self.first_trained else None,
                          layers_pattern="layer" if self.first_trained else None)
        return get_peft_model(encoder, lcfg)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.seeker_frozen and self.seeker_encoder is not None:
            self.seeker_encoder.eval()  # frozen: no dropout, so cached and live outputs agree
        if self.cfg.finetune == "none":
            self.response_encoder.eval()
        return self

    def merge_adapters(self) -> None:
        """Fold LoRA into the base weights for inference (same outputs, no adapter overhead).
        A merged model cannot be saved as an adapter checkpoint any more."""
        for name in ("response_encoder", "seeker_encoder"):
            enc = getattr(self, name)
            if enc is not None and hasattr(enc, "merge_and_unload"):
                setattr(self, name, enc.merge_and_unload())
        self.merged = True

    # ------------------------------------------------------------------ forward

    @staticmethod
    def _base(encoder):
        return encoder.get_base_model() if hasattr(encoder, "get_base_model") else encoder

    def encode_seeker(self, ids, mask):
        if self.attention is None:
            return None
        enc = self.seeker_encoder if self.seeker_encoder is not None else self.response_encoder
        return enc(input_ids=ids, attention_mask=mask).last_hidden_state

    def encode_response(self, ids=None, mask=None, lower=None):
        """Final response states; ``lower`` (the cached input of the first trained layer, see
        ``lower_response``) skips the frozen layers below it."""
        if lower is None:
            return self.response_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        from transformers.masking_utils import create_bidirectional_mask

        base = self._base(self.response_encoder)
        ext = create_bidirectional_mask(config=base.config, inputs_embeds=lower, attention_mask=mask)
        extra = {}
        if hasattr(base.encoder, "compute_position_bias"):  # MPNet: one relative-position bias for all layers
            extra["position_bias"] = base.encoder.compute_position_bias(lower)
        h = lower
        for layer in base.encoder.layer[self.first_trained:]:
            out = layer(h, ext, **extra)
            h = out[0] if isinstance(out, tuple) else out  # BERT layers return a tensor, MPNet a tuple
        return h

    @torch.no_grad()
    def lower_response(self, ids, mask):
        """Input of the first trained response layer (fixed during training: cacheable)."""
        out = self.response_encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        return out.hidden_states[self.first_trained]

    def heads(self, e_resp, resp_mask, e_seek=None, seek_mask=None) -> dict[str, torch.Tensor]:
        """Attention + heads on encoded sequences (so a batch's encodings can be re-paired)."""
        h = e_resp if self.attention is None else self.attention(e_resp, e_seek, seek_mask)
        h = self.drop(h)
        if self.cfg.pooling == "cls":
            pooled = h[:, 0]
        else:
            w = resp_mask.unsqueeze(-1).to(h.dtype)
            pooled = torch.cat([h[:, 0], (h * w).sum(1) / w.sum(1).clamp(min=1.0)], dim=-1)
        m = len(self.mechanisms)
        hid = torch.relu(self.level_hidden(pooled)).view(pooled.shape[0], m, -1)
        levels = torch.einsum("bmd,mdk->bmk", self.drop(hid), self.level_out) + self.level_bias  # [B, M, 3]
        rat = self.rationale(h).view(h.shape[0], h.shape[1], m, 2).permute(0, 2, 1, 3)  # [B, M, L, 2]
        return {"levels": levels, "rationales": rat, "match": self.match(pooled).squeeze(-1)}

    def forward(self, resp_ids, resp_mask, seek_ids=None, seek_mask=None):
        e_seek = self.encode_seeker(seek_ids, seek_mask) if self.attention is not None else None
        return self.heads(self.encode_response(resp_ids, resp_mask), resp_mask, e_seek, seek_mask)

    # ------------------------------------------------------------------ tokenisation

    def tokenize(self, seekers: list[str], responses: list[str], spans=None):
        """Tensors for a batch; ``spans`` (per pair: {mech: [(start, end)]}) adds token labels.

        Also returns the responses' offset mappings, to turn token decisions back into text.
        """
        tok = self.tokenizer
        kw = dict(truncation=True, max_length=self.cfg.max_len, padding=True, return_tensors="pt")
        r = tok([x or "" for x in responses], return_offsets_mapping=True, **kw)
        batch = {"resp_ids": r["input_ids"], "resp_mask": r["attention_mask"], "offsets": r["offset_mapping"]}
        if self.attention is not None:
            s = tok([x or "" for x in seekers], **kw)
            batch.update(seek_ids=s["input_ids"], seek_mask=s["attention_mask"])
        if spans is not None:
            batch["rationale_labels"] = token_labels(r["offset_mapping"], r["attention_mask"], spans,
                                                     self.mechanisms)
        return batch

    # ------------------------------------------------------------------ checkpoints

    def trainable_state(self) -> dict[str, torch.Tensor]:
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        return {n: t for n, t in self.state_dict().items() if n in names}

    def save(self, out_dir: str | Path, dtype=torch.float16, extra: dict | None = None) -> None:
        from safetensors.torch import save_file

        if getattr(self, "merged", False) and self.cfg.finetune == "lora":
            raise ValueError("this model's adapters were merged for inference; save the training copy")

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        state = {n: t.detach().to("cpu", dtype=dtype if t.is_floating_point() else t.dtype).contiguous()
                 for n, t in self.trainable_state().items()}
        tmp = out / ".model.safetensors.tmp"
        save_file(state, str(tmp), metadata={"format": FORMAT})
        tmp.replace(out / "model.safetensors")
        atomic_write_json(out / "config.json", {"format": FORMAT, "config": dataclasses.asdict(self.cfg),
                                                **(extra or {})})

    @classmethod
    def load(cls, path: str | Path, device: str | None = None, encoder_factory=None) -> "EpitomeModel":
        from safetensors.torch import load_file

        path = Path(path)
        meta_file = path / "config.json"
        if not meta_file.exists():
            raise FileNotFoundError(f"{path} is not an EPITOME classifier folder (no config.json)")
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{meta_file}: unknown format {meta.get('format')!r}, expected {FORMAT}")
        cfg = from_dict(EpitomeConfig, meta["config"], where=str(meta_file))
        model = cls(cfg, encoder_factory=encoder_factory)
        state = load_file(str(path / "model.safetensors"))
        expected = set(model.trainable_state())
        missing, unexpected = expected - set(state), set(state) - expected
        if missing or unexpected:
            raise ValueError(f"{path}: checkpoint does not match its config (missing {sorted(missing)[:3]}, "
                             f"unexpected {sorted(unexpected)[:3]})")
        own = model.state_dict()
        model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)
        model.meta = meta
        model.merge_adapters()
        model.eval()
        return model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def token_labels(offsets: torch.Tensor, mask: torch.Tensor, spans: list[dict], mechanisms) -> torch.Tensor:
    """[B, M, L] long: 1 where a real token overlaps a rationale span, 0 elsewhere, -100 on
    special and padding tokens (ignored by the loss and the metrics)."""
    B, L = mask.shape
    out = torch.zeros((B, len(mechanisms), L), dtype=torch.long)
    starts, ends = offsets[..., 0], offsets[..., 1]  # [B, L]
    for b in range(B):
        for m, mech in enumerate(mechanisms):
            sp = torch.tensor(list(spans[b].get(mech, ())), dtype=torch.long).view(-1, 2)
            if len(sp):
                hit = (starts[b, :, None] < sp[None, :, 1]) & (sp[None, :, 0] < ends[b, :, None])
                out[b, m] = hit.any(-1).long()
    real = mask.bool() & (ends > starts)
    return out.masked_fill(~real[:, None, :], -100)


def token_spans(offsets, keep: list[bool], text: str, max_gap: int = 0) -> list[str]:
    """Merge kept tokens into character spans and return them as substrings of ``text``.

    Tokens separated only by whitespace join; with ``max_gap`` a run of up to that many unkept
    tokens between two kept ones is filled (the token head often skips a word inside a phrase).
    Spans without a letter or digit (a lone ".") are dropped.
    """
    spans: list[list[int]] = []
    gap = None  # unkept real tokens since the last kept one
    for (s, e), k in zip(offsets, keep):
        s, e = int(s), int(e)
        if e <= s:
            continue
        if not k:
            gap = None if gap is None else gap + 1
            continue
        if spans and (not text[spans[-1][1]:s].strip() or (gap is not None and gap <= max_gap)):
            spans[-1][1] = e
        else:
            spans.append([s, e])
        gap = 0
    return [text[s:e] for s, e in spans if any(c.isalnum() for c in text[s:e])]


@torch.no_grad()
def run_model(model: EpitomeModel, seekers: list[str], responses: list[str], batch_size: int = 32,
              spans: list[dict] | None = None, progress: bool = False, desc: str = "scoring") -> dict:
    """Score pairs without gradients, in batches of similar length, results in input order.

    Returns ``probs`` [N, M, 3] float tensor, ``token_probs`` (per pair [M, T] p(rationale) over its
    tokens), ``offsets`` (per pair [T, 2]), ``mask`` (per pair [T] bool: real non-special token)
    and, with ``spans``, ``token_labels`` (per pair [M, T]).
    """
    from tqdm.auto import tqdm

    model.eval()
    device = next(model.parameters()).device
    n = len(responses)
    order = sorted(range(n), key=lambda i: len(responses[i] or ""))
    probs = torch.zeros(n, len(model.mechanisms), 3)
    tok_p, offs, masks, labels = [None] * n, [None] * n, [None] * n, [None] * n
    with tqdm(total=n, desc=desc, unit=" pairs", disable=not progress, dynamic_ncols=True) as bar:
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            batch = model.tokenize([seekers[i] for i in idx], [responses[i] for i in idx],
                                   spans=[spans[i] for i in idx] if spans is not None else None)
            inputs = {k: batch[k].to(device) for k in ("resp_ids", "resp_mask", "seek_ids", "seek_mask")
                      if k in batch}
            out = model(**inputs)
            probs[idx] = torch.softmax(out["levels"].float(), -1).cpu()
            rp = torch.softmax(out["rationales"].float(), -1)[..., 1].cpu()  # [B, M, L]
            for j, i in enumerate(idx):
                o = batch["offsets"][j]
                real = (batch["resp_mask"][j].bool() & (o[:, 1] > o[:, 0]))
                tok_p[i], offs[i], masks[i] = rp[j], o, real
                if spans is not None:
                    labels[i] = batch["rationale_labels"][j]
            bar.update(len(idx))
    out = {"probs": probs, "token_probs": tok_p, "offsets": offs, "mask": masks}
    if spans is not None:
        out["token_labels"] = labels
    return out
