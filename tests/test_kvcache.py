import torch

from core.kvcache import SPARE, GrowingCache


def _tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    return LlamaForCausalLM(cfg).eval().requires_grad_(False)


def _decode(model, cache, ids, steps: int, drop_after: int | None = None):
    """Greedy decoding through ``cache``; after ``drop_after`` steps the first row leaves the batch."""
    out = model(input_ids=ids, past_key_values=cache, use_cache=True)
    logits = [out.logits[:, -1]]
    for step in range(steps):
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        if step == drop_after:
            out.past_key_values.batch_select_indices(torch.arange(1, nxt.shape[0]))
            nxt = nxt[1:]
            logits = [x[1:] for x in logits]
        out = model(input_ids=nxt, past_key_values=out.past_key_values, use_cache=True)
        logits.append(out.logits[:, -1])
    return torch.stack(logits, 1), out.past_key_values


def test_growing_cache_decodes_what_the_dynamic_cache_does():
    from transformers import DynamicCache

    model = _tiny_llama()
    ids = torch.randint(0, 300, (3, 7))
    with torch.no_grad():
        for drop in (None, 4):
            steps = SPARE + 10  # past the first buffer's room: it has to grow once
            want, _ = _decode(model, DynamicCache(), ids, steps, drop)
            got, cache = _decode(model, GrowingCache(), ids, steps, drop)
            assert torch.equal(got, want)
            layer = cache.layers[0]
            assert layer.keys.shape[-2] == 7 + steps and layer.keys.shape[0] == (3 if drop is None else 2)
            assert layer._backed()  # the row selection kept the buffer, room included


def test_growing_cache_appends_in_place_and_starts_from_given_tensors():
    keys, values = torch.randn(2, 2, 5, 8), torch.randn(2, 2, 5, 8)
    cache = GrowingCache([(keys, values)])
    layer = cache.layers[0]
    buffer = layer._buf[0]
    k1, v1 = torch.randn(2, 2, 1, 8), torch.randn(2, 2, 1, 8)
    k, v = layer.update(k1, v1)
    assert layer._buf[0] is buffer and k.data_ptr() == buffer.data_ptr()  # no copy of the first 5 tokens
    assert torch.equal(k, torch.cat([keys, k1], -2)) and torch.equal(v, torch.cat([values, v1], -2))
    cache.crop(-2)
    k, _ = layer.update(k1, v1)  # writes over the cropped token
    assert k.shape[-2] == 5 and torch.equal(k[:, :, -1:], k1) and layer._buf[0] is buffer
    layer.keys = layer.keys.clone()  # replaced from outside: the next update copies it into a new buffer
    k, _ = layer.update(k1, v1)
    assert layer._buf[0] is not buffer and torch.equal(k[:, :, -1:], k1) and torch.equal(k[:, :, :4], keys[:, :, :4])
