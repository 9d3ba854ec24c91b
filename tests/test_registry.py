import pytest
import torch

from core import registry
from core.registry import ModelResolutionError


def test_unknown_path_is_a_clear_error():
    with pytest.raises(ModelResolutionError, match="no model folder"):
        registry.resolve("./no/such/model")


def test_hub_id_offline_error_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelResolutionError) as err:
        registry.load_tokenizer("someone/surely-not-cached-model")
    msg = str(err.value)
    assert "HF_HUB_OFFLINE" in msg and "smollm2-135m" in msg and "local folder" in msg


def test_materialise_is_atomic_and_once(monkeypatch, tmp_path):
    monkeypatch.setenv("PARTNER_CACHE", str(tmp_path))
    calls = []

    def failing(out):
        (out / "half").write_text("x")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        registry.materialise("thing", failing)
    assert not (tmp_path / "models" / "thing").exists()  # nothing half-built left in place

    def build(out):
        calls.append(1)
        (out / "weights").write_text("w")

    a = registry.materialise("thing", build)
    b = registry.materialise("thing", build)
    assert a == b and (a / "weights").read_text() == "w" and calls == [1]


def test_gpt2_tokenizer_is_the_real_one():
    tok = registry.load_tokenizer("gpt2-tokenizer")
    assert len(tok) == 50257 and tok.eos_token_id == 50256
    assert tok("Hello world")["input_ids"] == [15496, 995]


def test_tiny_models_load():
    lm, tok = registry.load_causal_lm("tiny-gpt2")
    assert lm.config.n_layer == 2 and tok.pad_token_id == tok.eos_token_id
    enc, etok = registry.load_encoder("tiny-bert")
    out = enc(**etok(["a sentence"], return_tensors="pt"))
    assert out.last_hidden_state.shape[-1] == 32


@pytest.mark.slow
def test_smollm2_converts_and_generates():
    lm, tok = registry.load_causal_lm("smollm2-135m")
    assert type(lm).__name__ == "LlamaForCausalLM"
    ids = tok("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = lm.generate(**ids, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    text = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in text
    # The converted folder is a plain HF folder that reloads without the GGUF.
    assert (registry.embedded_path("smollm2-135m") / "config.json").exists()


@pytest.mark.slow
def test_minilm_sentence_embedding():
    st = registry.load_sentence_embedder("minilm")
    e = st.encode(["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell."],
                  normalize_embeddings=True, convert_to_tensor=True)
    assert e.shape == (3, 384)
    near, far = float(e[0] @ e[1]), float(e[0] @ e[2])
    assert near > 0.6 and far < 0.2
