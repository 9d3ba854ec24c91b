import pytest
import torch

from core import packed
from core.packed import PackedLinear, pack_linears

pytestmark = pytest.mark.skipif(not packed.available(), reason="this PyTorch build has no oneDNN linear ops")


def _tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    return LlamaForCausalLM(cfg).eval().requires_grad_(False)


def test_a_packed_model_computes_what_the_plain_one_does():
    model = _tiny_llama()
    ids = torch.randint(0, 300, (3, 12))
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        plain_gen = model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=0)
        n = pack_linears(model)
        assert n == 2 * 7 + 1  # q k v o gate up down per layer, and the LM head
        assert isinstance(model.lm_head, PackedLinear)
        assert torch.allclose(model(input_ids=ids).logits, plain, atol=1e-4)
        assert torch.equal(model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=0), plain_gen)


def test_packing_leaves_other_dtypes_and_biases_right():
    lin = torch.nn.Linear(8, 5)
    x = torch.randn(2, 3, 8)
    assert torch.allclose(PackedLinear(lin)(x), lin(x), atol=1e-5)
    assert pack_linears(_tiny_llama().to(torch.bfloat16)) == 0  # only fp32 CPU models are packed
