"""Reverse-model formats, scoring and training on the tiny GPT-2 (fast)."""

import math

import pytest
import torch

from classifiers.reverse import (FORWARD_LABELS, REVERSE_LABELS, doc_start_id, encode_conditional,
                                 encode_unconditional, target_logprobs)


@pytest.fixture(scope="module")
def tiny():
    from core.registry import load_causal_lm

    return load_causal_lm("tiny-gpt2")


def test_prompt_formats_and_truncation(tiny):
    _, tok = tiny
    ids, n = encode_conditional(tok, "My dog died.", "That is awful.", FORWARD_LABELS)
    assert tok.decode(ids[:n]) == "<|endoftext|>Post: My dog died.\nReply:"
    assert tok.decode(ids[n:]) == " That is awful."
    ids, n = encode_conditional(tok, "That is awful.", "My dog died.", REVERSE_LABELS)
    assert tok.decode(ids[:n]) == "<|endoftext|>Reply: That is awful.\nPost:"
    long = " ".join(["word"] * 300)
    ids, n = encode_conditional(tok, long, long, FORWARD_LABELS, max_context=10, max_target=7)
    assert len(ids) - n == 7 and n == 1 + len(tok.encode("Post: ")) + 10 + len(tok.encode("\nReply:"))
    ids, n = encode_conditional(tok, "ctx", "   ", FORWARD_LABELS)
    assert ids[n:] == [tok.eos_token_id]  # an empty target is scored as end-of-text
    assert encode_unconditional(tok, "Hi there.")[1] == 1


class _Backend:
    def __init__(self, vocab):
        self.vocab = vocab

    def token_to_id(self, token):
        return self.vocab.get(token)


class _Tok:
    """A tokenizer with ``backend_tokenizer`` (fast) or only ``get_vocab`` (slow)."""

    def __init__(self, vocab, bos, eos, fast):
        self.vocab, self.bos_token_id, self.eos_token_id = vocab, bos, eos
        if fast:
            self.backend_tokenizer = _Backend(vocab)

    def get_vocab(self):
        return dict(self.vocab)


@pytest.mark.parametrize("fast", [True, False])
def test_doc_start_is_endoftext_else_bos_else_eos(tiny, fast):
    _, tok = tiny
    assert doc_start_id(tok) == tok.get_vocab()["<|endoftext|>"]
    assert doc_start_id(_Tok({"<|endoftext|>": 7, "a": 1}, bos=3, eos=4, fast=fast)) == 7
    assert doc_start_id(_Tok({"<s>": 3, "a": 1}, bos=3, eos=4, fast=fast)) == 3
    assert doc_start_id(_Tok({"</s>": 4, "a": 1}, bos=None, eos=4, fast=fast)) == 4


def test_target_logprobs_mask_padding(tiny):
    model, tok = tiny
    seqs = [encode_conditional(tok, "I feel alone.", "You are not alone.", FORWARD_LABELS),
            encode_conditional(tok, "x " * 80, "y " * 40, FORWARD_LABELS)]
    both = target_logprobs(model, seqs, tok.pad_token_id, batch_size=2)
    alone = target_logprobs(model, seqs[:1], tok.pad_token_id)
    assert both[0][1] == alone[0][1] == len(seqs[0][0]) - seqs[0][1]
    assert both[0][0] == pytest.approx(alone[0][0], abs=1e-4)


@pytest.mark.slow
def test_training_lowers_perplexity_and_loads_as_reverse_adapter(tmp_path):
    from classifiers.config import ReverseConfig
    from classifiers.reverse import train
    from rewards.lm import FrozenLM

    pairs = [("t", "I am so sorry about your dog.", "My dog died yesterday."),
             ("t", "Exams are stressful, you did your best.", "I failed my exams."),
             ("t", "It is hard to feel alone at work.", "Nobody at work talks to me.")]
    cfg = ReverseConfig(batch_size=3, epochs=8, lr=5e-3, max_examples=0, max_heldout=3)
    meta = train(cfg, "tiny-gpt2", tmp_path, data={"train": pairs, "heldout": pairs}, device="cpu")
    ppl = meta["heldout_perplexity"]
    assert math.isfinite(ppl["untuned"]) and ppl["tuned"] < ppl["untuned"]
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    lm = FrozenLM("tiny-gpt2", device="cpu")
    lm.attach_reverse(tmp_path)
    enc = [encode_conditional(lm.tok, pairs[0][1], pairs[0][2], REVERSE_LABELS)]
    with_adapter = lm.target_logprobs(enc, adapter=True)[0][0]
    without = lm.target_logprobs(enc, adapter=False)[0][0]
    assert with_adapter > without  # the adapter learnt this pair; disable_adapter gives the base back
    assert not any(p.requires_grad for p in lm.model.parameters())
