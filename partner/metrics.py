"""Automatic metrics for rewrites (paper §6.1), with the authors' bugs fixed (partner-method.md §5, §6 item 18).

Every definition is pinned down here, because the paper's are ambiguous and its code's are wrong:

- **distinct-n**: corpus-level. Distinct n-grams / total n-grams, over ``core.text.word_tokenize``
  tokens (Treebank words, punctuation split off, lower-cased), n-grams taken within each text. The
  authors divided both distinct-1 and distinct-2 by the total number of *words*, over raw
  whitespace tokens; for distinct-1 both denominators agree.
- **edit rate**: word-level Levenshtein distance (insertions, deletions, substitutions of
  ``word_tokenize`` tokens) divided by the number of words of the original (TER-style; can exceed 1).
  An empty original has no length: its edit rate is the number of words added (i.e. divided by 1).
- **BLEU**: corpus BLEU-4 over ``word_tokenize`` tokens with NLTK's ``corpus_bleu`` and smoothing
  method 1 (add epsilon to zero n-gram counts), on a 0..1 scale as the paper's Table 4. The authors
  passed raw strings to ``sentence_bleu`` and so scored character n-grams.
- **specificity**: cosine between the mean-pooled, L2-normalised sentence embeddings (MiniLM,
  ``registry.load_sentence_embedder``) of the seeker post and of the rewritten response.
- **perplexity**: exp(mean token NLL) under a frozen reference LM, every text prefixed with a
  document-start token so its first token is scored, padding masked out of the loss (the authors
  counted padded EOS tokens). Reported corpus-level (token-weighted) and per text.
- **coherence**: mean p(coherent) between each inserted / replaced sentence and its neighbouring
  sentences in the final response; an output of a single sentence scores 1.0 (as the paper);
  a response without edits has no edited sentence and no coherence (None).
- **empathy change**: f_e(rewrite) - f_e(original) on the 0..6 total, overall and grouped by the
  original's total (the paper's Fig. 4a).

The text metrics are pure functions of their inputs; the model-based ones take the model as an
argument, so tests can pass tiny models.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

from core.batching import pad_ids
from core.text import ngrams, split_sentences, word_tokenize
from partner.edits import replay_edit


# ------------------------------------------------------------------------------------------------
# text metrics


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Corpus-level distinct-n: |distinct n-grams| / |n-grams| over all texts (0.0 if none)."""
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        grams = ngrams(word_tokenize(text), n)
        seen.update(grams)
        total += len(grams)
    return len(seen) / total if total else 0.0


def levenshtein(a: Sequence, b: Sequence) -> int:
    """Edit distance between two sequences (unit-cost insert, delete, substitute)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i]
        for j, y in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def edit_distance_words(original: str, rewritten: str) -> int:
    return levenshtein(word_tokenize(original), word_tokenize(rewritten))


def edit_rate(original: str, rewritten: str) -> float:
    """Word-level Levenshtein distance / number of words of the original (divided by 1 if empty)."""
    return edit_distance_words(original, rewritten) / max(1, len(word_tokenize(original)))


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str | Sequence[str]]) -> float:
    """Tokenised corpus BLEU-4 (NLTK, smoothing method 1), 0..1. Each reference may be a list."""
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu as nltk_corpus_bleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        return 0.0
    refs = [[word_tokenize(r) for r in ([ref] if isinstance(ref, str) else ref)] for ref in references]
    hyps = [word_tokenize(h) for h in hypotheses]
    return float(nltk_corpus_bleu(refs, hyps, smoothing_function=SmoothingFunction().method1))


def mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


# ------------------------------------------------------------------------------------------------
# empathy change


def empathy_change_by_level(before: Sequence[int], after: Sequence[int]) -> dict:
    """Mean change overall and by original total 0..6: {"overall", "by_level": {l: {"mean", "n"}}}."""
    if len(before) != len(after):
        raise ValueError("before and after differ in length")
    deltas = [a - b for b, a in zip(before, after)]
    by_level = {}
    for level in range(7):
        ds = [d for b, d in zip(before, deltas) if b == level]
        by_level[level] = {"mean": (sum(ds) / len(ds)) if ds else None, "n": len(ds)}
    return {"overall": mean(deltas), "n": len(deltas), "by_level": by_level}


def bootstrap_ci(values: Sequence[float], n_boot: int = 2000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap confidence interval of the mean (None for an empty sample); seeded."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return None
    idx = np.random.default_rng(seed).integers(0, x.size, size=(n_boot, x.size))
    means = x[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def paired_comparison(a: Sequence[float], b: Sequence[float], n_boot: int = 2000, n_perm: int = 10000,
                      seed: int = 0) -> dict:
    """Paired comparison of two methods scored on the same inputs, item by item: ``a - b``.

    Returns the mean difference with its bootstrap 95 % CI, a two-sided sign-flip permutation p-value
    (the null: each item's difference is as likely negative as positive; add-one corrected, so never 0)
    and how many items are better / equal / worse under ``a``.
    """
    import numpy as np

    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} vs {len(b)}")
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    out = {"n": int(d.size), "better": int((d > 0).sum()), "same": int((d == 0).sum()),
           "worse": int((d < 0).sum())}
    if d.size == 0:
        return {**out, "mean_diff": None, "ci95": None, "p_value": None}
    observed = abs(d.mean())
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(n_perm, d.size))
    extreme = int((np.abs((signs * d).mean(axis=1)) >= observed - 1e-12).sum())
    return {**out, "mean_diff": float(d.mean()), "ci95": bootstrap_ci(d, n_boot, seed),
            "p_value": (extreme + 1) / (n_perm + 1)}


def group_by_level(levels: Sequence[int], values: Sequence[float]) -> dict[int, dict]:
    """Mean of ``values`` grouped by an integer level 0..6 (for edits by original empathy)."""
    out = {}
    for level in range(7):
        vs = [v for lv, v in zip(levels, values) if lv == level]
        out[level] = {"mean": (sum(vs) / len(vs)) if vs else None, "n": len(vs)}
    return out


# ------------------------------------------------------------------------------------------------
# coherence


def edited_sentence_indices(original: str, edits: Sequence[dict]) -> tuple[list[str], list[int]]:
    """Replay ``edits`` on the original's sentences: (final sentences, indices of edited ones).

    Edits are applied in order, each ``position`` referring to the response as it stood before that
    edit (as partner-rewrite writes them). A deletion (replacement by "") removes the sentence and
    leaves no edited sentence behind.
    """
    sents = list(split_sentences(original))
    edited: list[int] = []
    for e in edits:
        pos, sent, action = int(e["position"]), (e.get("sentence") or "").strip(), e["action"]
        n = len(sents)
        at = replay_edit(sents, action, pos, sent)
        if len(sents) > n:  # an insertion shifts the later sentences down
            edited = [i + 1 if i >= at else i for i in edited] + [at]
        elif len(sents) < n:  # a deletion shifts them up and leaves no edited sentence
            edited = [i - 1 if i > pos else i for i in edited if i != pos]
        elif at is not None:
            edited = [i for i in edited if i != at] + [at]
    return sents, sorted(set(edited))


def coherence_pairs(original: str, edits: Sequence[dict]) -> tuple[list[tuple[str, str]], bool | None]:
    """(edited sentence, neighbour) pairs to score, and whether the row is a single-sentence output.

    Returns ([], None) when there is no edited sentence (no coherence defined), ([], True) for a
    single-sentence output (coherence 1.0 by definition).
    """
    sents, edited = edited_sentence_indices(original, edits)
    if not edited:
        return [], None
    if len(sents) <= 1:
        return [], True
    pairs = []
    for i in edited:
        for j in (i - 1, i + 1):
            if 0 <= j < len(sents):
                pairs.append((sents[i], sents[j]))
    return pairs, False


def coherence(originals: Sequence[str], edits: Sequence[Sequence[dict]], prob_fn) -> list[float | None]:
    """Per-row coherence; ``prob_fn(sent_a: list, sent_b: list) -> list[float]`` (CoherenceScorer.prob)."""
    plans = [coherence_pairs(o, e) for o, e in zip(originals, edits)]
    flat = [p for pairs, _ in plans for p in pairs]
    probs = list(prob_fn([a for a, _ in flat], [b for _, b in flat])) if flat else []
    out, k = [], 0
    for pairs, single in plans:
        if single is None:
            out.append(None)
        elif single:
            out.append(1.0)
        else:
            out.append(sum(probs[k:k + len(pairs)]) / len(pairs))
            k += len(pairs)
    return out


# ------------------------------------------------------------------------------------------------
# model-based metrics


def specificity(seekers: Sequence[str], responses: Sequence[str], embedder, batch_size: int = 64) -> list[float]:
    """Cosine of normalised mean-pooled sentence embeddings (a SentenceTransformer) per pair."""
    import numpy as np

    if not seekers:
        return []
    a = embedder.encode(list(seekers), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                       show_progress_bar=False)
    b = embedder.encode(list(responses), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                       show_progress_bar=False)
    return [float(x) for x in np.sum(a * b, axis=1)]


def token_nll(texts: Sequence[str], model, tok, batch_size: int = 16, max_tokens: int = 256,
              progress: bool = False) -> list[tuple[float, int]]:
    """(summed NLL in nats, number of scored tokens) per text; padding masked, no grad.

    Each text is prefixed with a document-start token and truncated to ``max_tokens`` tokens. An
    empty text scores (0.0, 0).
    """
    import torch
    from tqdm.auto import tqdm

    from classifiers.reverse import doc_start_id

    start = doc_start_id(tok)
    pad = tok.pad_token_id if tok.pad_token_id is not None else start
    device = next(model.parameters()).device
    encoded = [[start] + tok(t, add_special_tokens=False)["input_ids"][:max_tokens] for t in texts]
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))  # similar lengths batch together
    results: list[tuple[float, int]] = [(0.0, 0)] * len(texts)
    model.eval()
    bar = tqdm(total=len(texts), desc="perplexity", unit=" texts", disable=not progress, dynamic_ncols=True)
    with torch.no_grad():
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            ids, mask = pad_ids([encoded[i] for i in idx], pad)
            ids, mask = ids.to(device), mask.to(device)
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            target, tmask = ids[:, 1:], mask[:, 1:]
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none") * tmask
            for r, i in enumerate(idx):
                results[i] = (float(nll[r].sum()), int(tmask[r].sum()))
            bar.update(len(idx))
    bar.close()
    return results


def perplexity(texts: Sequence[str], model, tok, batch_size: int = 16, max_tokens: int = 256,
               progress: bool = False) -> dict:
    """{"corpus": exp(total NLL / total tokens), "per_text": [exp(mean NLL) or None for empty]}."""
    scored = token_nll(texts, model, tok, batch_size=batch_size, max_tokens=max_tokens, progress=progress)
    total_nll = sum(s for s, _ in scored)
    total_tok = sum(n for _, n in scored)
    return {
        "corpus": math.exp(total_nll / total_tok) if total_tok else None,
        "per_text": [math.exp(s / n) if n else None for s, n in scored],
    }

