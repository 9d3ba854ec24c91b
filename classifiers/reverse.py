"""The reverse model p←(S | R) for the mutual-information reward, and conditional LM scoring.

PARTNER's r_m (paper §5.5, Eq. 4) mixes the forward likelihood of the rewritten response given the
seeker post with the *reverse* likelihood of the seeker post given the response, DialoGPT-MMI
style. The authors never implemented it (partner-method.md §2.2). Here the reverse model is the
policy's backbone (SmolLM2-135M by default) with a LoRA adapter fine-tuned on response -> seeker
pairs.

**Prompt formats** (plain text, so they work for any causal LM, chat-tuned or not)::

    forward  p→(R | S):   <doc> "Post: " S "\\nReply:" | " " R
    reverse  p←(S | R):   <doc> "Reply: " R "\\nPost:"  | " " S

``|`` separates the prompt from the scored target. ``<doc>`` is the LM's document-start token
(``<|endoftext|>`` where the vocabulary has it, else BOS, else EOS), so the first word is scored
in context like every other. Pieces are tokenised separately: the context is cut to
``max_context`` tokens (the beginning is kept, as the paper truncates posts), the target to
``max_target``. An empty target is scored as the EOS token alone (the probability of saying
nothing), so every sample gets a finite score. Training and scoring use the same
``encode_conditional``, so the adapter sees exactly the format it is scored with.

Folder layout (``train`` writes it, ``rewards.lm`` reads it)::

    reverse.json    backbone, format, lengths, held-out perplexities
    adapter/        PEFT LoRA adapter (fp16)
"""

from __future__ import annotations

import logging
import math
import random
import time
from pathlib import Path

from core.batching import pad_ids
from core.corpora import epitome_splits, load_counselchat, load_esconv, split_of
from core.jsonio import atomic_write_json
from core.registry import load_causal_lm

log = logging.getLogger(__name__)

FORWARD_LABELS = ("Post:", "Reply:")   # p→(R | S): context = seeker post, target = response
REVERSE_LABELS = ("Reply:", "Post:")   # p←(S | R): context = response, target = seeker post
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",  # Llama
                "c_attn", "c_proj", "c_fc"]  # GPT-2 / DialoGPT


def default_path() -> Path:
    return Path(__file__).resolve().parent.parent / "models" / "reverse"


def doc_start_id(tok) -> int:
    """The document-start token: ``<|endoftext|>`` where the vocabulary has it (GPT-2, SmolLM2), else
    BOS, else EOS. A fast tokenizer looks the token up in its Rust vocabulary (microseconds);
    ``get_vocab()`` builds a 49k-entry dict on every call (about 60 ms), which used to be paid once per
    scored sequence."""
    backend = getattr(tok, "backend_tokenizer", None)
    found = backend.token_to_id("<|endoftext|>") if backend is not None else tok.get_vocab().get("<|endoftext|>")
    if found is not None:
        return found
    return tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id


def encode_target(tok, text: str, max_target: int, leading_space: bool = True) -> list[int]:
    text = text.strip()
    if not text:
        return [tok.eos_token_id]
    return tok.encode((" " if leading_space else "") + text, add_special_tokens=False)[:max_target]


def encode_conditional(tok, context: str, target: str, labels: tuple[str, str], max_context: int = 96,
                       max_target: int = 96) -> tuple[list[int], int]:
    """(token ids, prompt length): the target's tokens are ids[prompt length:]."""
    prompt = [doc_start_id(tok)]
    prompt += tok.encode(f"{labels[0]} ", add_special_tokens=False)
    prompt += tok.encode(context.strip(), add_special_tokens=False)[:max_context]
    prompt += tok.encode(f"\n{labels[1]}", add_special_tokens=False)
    return prompt + encode_target(tok, target, max_target), len(prompt)


def encode_unconditional(tok, text: str, max_target: int = 128) -> tuple[list[int], int]:
    """<doc> text: the whole text is scored (fluency)."""
    return [doc_start_id(tok)] + encode_target(tok, text, max_target, leading_space=False), 1


def target_logprobs(model, encoded: list[tuple[list[int], int]], pad_id: int, batch_size: int = 16,
                    device=None) -> list[tuple[float, int]]:
    """(sum of log p over target tokens, number of target tokens) per sequence; no gradients.

    Left padding with an attention mask and explicit position ids, so padding changes nothing
    (every sequence sees positions 0.. and never attends to a pad); every target then ends at the
    last column, so the LM head and softmax run only over the last ``max target length`` positions
    (``logits_to_keep``) instead of the whole prompt. Sequences are batched by length so padding
    costs little, and results come back in input order.
    """
    import torch

    device = device or next(model.parameters()).device
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    out: list[tuple[float, int]] = [(0.0, 0)] * len(encoded)
    with torch.no_grad():
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            ids, mask = pad_ids([encoded[i][0] for i in idx], pad_id, left=True)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            keep = max(len(encoded[i][0]) - encoded[i][1] for i in idx) + 1
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                           position_ids=positions.to(device), logits_to_keep=keep).logits
            for row, i in enumerate(idx):
                seq, n_prompt = encoded[i]
                t = len(seq) - n_prompt  # logits column keep-1-t predicts the first target token
                logp = torch.log_softmax(logits[row, keep - 1 - t:keep - 1].float(), dim=-1)
                tgt = torch.tensor(seq[n_prompt:], device=logp.device)
                out[i] = (float(logp.gather(-1, tgt.unsqueeze(-1)).sum()), t)
    return out


def prompted_target_logprobs(model, encoded: list[tuple[list[int], int]], pad_id: int, batch_size: int = 16,
                             prompts=None, device=None) -> list[tuple[float, int]]:
    """``target_logprobs`` for sequences that share prompts: each distinct prompt runs once, its KV
    cache and last-position log-probabilities are kept in ``prompts`` (a ``rewards.cache.LRUCache``
    or a dict, keyed by the prompt's token ids), and only the targets run after it.

    The forward MI term scores several rewrites of one seeker post, and RL scores the same posts
    step after step: the post (up to 64 tokens) is the longer part of the sequence, so it is the
    part worth running once. Same values as ``target_logprobs`` up to float rounding.
    """
    import torch
    from transformers import DynamicCache

    device = device or next(model.parameters()).device
    prompts = {} if prompts is None else prompts
    keys = [tuple(seq[:n]) for seq, n in encoded]

    def run_prompts(missing):
        done = []
        for b in range(0, len(missing), batch_size):
            chunk = missing[b:b + batch_size]
            ids, mask = pad_ids([list(k) for k in chunk], pad_id, left=True)
            out = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                        position_ids=(mask.cumsum(-1) - 1).clamp(min=0).to(device), use_cache=True, logits_to_keep=1)
            width = ids.shape[1]
            layers = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
            last = torch.log_softmax(out.logits[:, -1].float(), -1)
            for j, k in enumerate(chunk):
                kv = [(kk[j:j + 1, :, width - len(k):].clone(), vv[j:j + 1, :, width - len(k):].clone())
                      for kk, vv in layers]
                done.append((kv, last[j].clone()))
        return done

    if hasattr(prompts, "get_many"):
        cached = prompts.get_many(keys, run_prompts)
    else:
        missing = list(dict.fromkeys(k for k in keys if k not in prompts))
        prompts.update(zip(missing, run_prompts(missing)))
        cached = [prompts[k] for k in keys]

    order = sorted(range(len(encoded)), key=lambda i: (len(keys[i]), len(encoded[i][0]) - len(keys[i])))
    out: list[tuple[float, int]] = [(0.0, 0)] * len(encoded)
    with torch.no_grad():
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            lens = [len(keys[i]) for i in idx]
            width = max(lens)
            per_layer = []
            for layer in range(len(cached[idx[0]][0])):
                per_layer.append(tuple(torch.cat([torch.nn.functional.pad(cached[i][0][layer][part],
                                                                         (0, 0, width - n, 0)) for i, n in zip(idx, lens)])
                                       for part in (0, 1)))
            targets = [encoded[i][0][len(keys[i]):] for i in idx]
            tids, tmask = pad_ids(targets, pad_id, left=True)
            pmask = torch.tensor([[0] * (width - n) + [1] * n for n in lens], dtype=torch.long)
            positions = (torch.tensor(lens)[:, None] + tmask.cumsum(-1) - 1).clamp(min=0)
            keep = tids.shape[1]
            logits = model(input_ids=tids.to(device), attention_mask=torch.cat([pmask, tmask], 1).to(device),
                           position_ids=positions.to(device), past_key_values=DynamicCache(per_layer), use_cache=True,
                           logits_to_keep=keep).logits
            for row, i in enumerate(idx):
                tgt = torch.tensor(targets[row], device=logits.device)
                t = len(targets[row])
                logp = torch.log_softmax(logits[row, keep - t:keep - 1].float(), dim=-1)  # predicts tokens 1..t-1
                total = float(cached[i][1][tgt[0]]) + float(logp.gather(-1, tgt[1:].unsqueeze(-1)).sum())
                out[i] = (total, t)
    return out


def tidy_adapter(folder: Path, base_name: str) -> None:
    """Name the base model by its registry name, not this machine's path, and drop peft's empty card."""
    import json

    cfg_file = folder / "adapter_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["base_model_name_or_path"] = base_name
    cfg_file.write_text(json.dumps(cfg, indent=2) + "\n")
    (folder / "README.md").unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# training


def collect_pairs(data_dir=None, split_seed: int = 13) -> dict[str, list[tuple[str, str, str]]]:
    """{"train", "heldout"}: (corpus, response, seeker) triples. EPITOME train / dev splits;
    CounselChat and ESConv by the grouped hash split (train / dev); test parts are never read."""
    out: dict[str, list] = {"train": [], "heldout": []}
    splits = epitome_splits(data_dir, seed=split_seed)
    for split, target in (("train", "train"), ("dev", "heldout")):
        out[target] += [("epitome", p.response_post, p.seeker_post) for p in splits[split]]
    base = data_dir
    counsel = load_counselchat(None if base is None else f"{base}/counsel-chat/counsel-chat.csv")
    esconv = load_esconv(None if base is None else f"{base}/esconv/esconv-dev-pairs.jsonl")
    others = [(f"counselchat-{p.meta['question_id']}", "counselchat", p) for p in counsel]
    others += [(f"esconv-{p.seeker_post.strip().lower()}", "esconv", p) for p in esconv]
    for group, corpus, p in others:
        split = split_of(group, split_seed)
        if split != "test":
            out["train" if split == "train" else "heldout"].append((corpus, p.response_post, p.seeker_post))
    return out


def perplexity(model, tok, triples, max_context: int, max_target: int, batch_size: int = 8) -> float:
    """Token-level perplexity of the seeker posts given the responses (reverse format)."""
    enc = [encode_conditional(tok, r, s, REVERSE_LABELS, max_context, max_target) for _, r, s in triples]
    scores = target_logprobs(model, enc, tok.pad_token_id, batch_size)
    total = sum(s for s, _ in scores)
    n = sum(k for _, k in scores)
    return math.exp(-total / max(n, 1))


def train(cfg, backbone: str, out_dir: str | Path, data_dir=None, split_seed: int = 13,
          device: str | None = None, data: dict | None = None) -> dict:
    """LoRA-tune ``backbone`` on response -> seeker; report held-out perplexity before and after.

    ``cfg`` is a classifiers.config.ReverseConfig; ``backbone`` is already resolved (an empty
    cfg.backbone means the policy's); ``data`` ({"train", "heldout"} lists of (corpus, response,
    seeker)) replaces the corpora (tests).
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm.auto import tqdm

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    data = data if data is not None else collect_pairs(data_dir, split_seed)
    train_set = list(data["train"])
    rng.shuffle(train_set)
    if cfg.max_examples:
        train_set = train_set[:cfg.max_examples]
    held = list(data["heldout"])
    random.Random(cfg.seed + 1).shuffle(held)
    held = held[:cfg.max_heldout]
    log.info("reverse: %d training and %d held-out (response, seeker) pairs", len(train_set), len(held))

    model, tok = load_causal_lm(backbone, device=device)
    model.eval()
    start = time.time()
    ppl_base = perplexity(model, tok, held, cfg.max_context, cfg.max_target)
    log.info("reverse: held-out perplexity of the untuned backbone %.2f (%.0f s)", ppl_base, time.time() - start)

    targets = [t for t in LORA_TARGETS if any(n.endswith(t) for n, _ in model.named_modules())] or "all-linear"
    n_layers = model.config.num_hidden_layers
    # LoRA in the top layers only: backpropagation then stops below them (about half the CPU cost
    # of a step for a 30-layer model), and the reverse task is mostly about the output side.
    layers = list(range(max(0, n_layers - cfg.lora_layers), n_layers)) if cfg.lora_layers else None
    model = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=2 * cfg.lora_r, lora_dropout=0.05,
                                             target_modules=targets, layers_to_transform=layers,
                                             task_type="CAUSAL_LM"))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    steps = cfg.epochs * math.ceil(len(train_set) / cfg.batch_size)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
    start = time.time()
    bar = tqdm(total=steps, desc="reverse", unit="step")
    for epoch in range(cfg.epochs):
        rng.shuffle(train_set)
        for b in range(0, len(train_set), cfg.batch_size):
            chunk = train_set[b:b + cfg.batch_size]
            enc = [encode_conditional(tok, r, s, REVERSE_LABELS, cfg.max_context, cfg.max_target)
                   for _, r, s in chunk]
            ids, mask = pad_ids([e[0] for e in enc], tok.pad_token_id)
            labels = torch.full_like(ids, -100)
            for i, (seq, n_prompt) in enumerate(enc):
                labels[i, n_prompt:len(seq)] = ids[i, n_prompt:len(seq)]
            loss = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", epoch=epoch)
    bar.close()
    train_s = time.time() - start

    model.eval()
    ppl_tuned = perplexity(model, tok, held, cfg.max_context, cfg.max_target)
    log.info("reverse: held-out perplexity %.2f untuned -> %.2f tuned", ppl_base, ppl_tuned)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for p in params:  # fp16 on disk halves the shipped size; loading casts back to the base dtype
        p.data = p.data.half()
    model.save_pretrained(str(out / "adapter"))
    tidy_adapter(out / "adapter", backbone)
    meta = {"backbone": backbone, "format": {"forward": list(FORWARD_LABELS), "reverse": list(REVERSE_LABELS)},
            "max_context": cfg.max_context, "max_target": cfg.max_target, "lora_r": cfg.lora_r,
            "lora_targets": targets, "lora_layers": layers, "train_examples": len(train_set), "heldout_examples": len(held),
            "epochs": cfg.epochs, "train_seconds": round(train_s, 1),
            "heldout_perplexity": {"untuned": round(ppl_base, 3), "tuned": round(ppl_tuned, 3)},
            "data": "EPITOME Reddit train split (dev held out), CounselChat and ESConv grouped-hash train "
                    "(dev held out); test parts unused"}
    atomic_write_json(out / "reverse.json", meta)
    return meta
