import pytest
import torch

from partner import edits as E
from partner.config import PolicyConfig
from partner.policy import PartnerPolicy

SEEKERS = [
    "I failed my exam again and I feel like an idiot. Nobody in my family gets it.",
    "My dog died yesterday.",
    "I can't sleep. " * 40,  # long: truncated, but the window must survive
    "Work is too much lately.",
]
WINDOWS = [["That sucks.", "You will do better next time."], [], ["Me too.", "It gets better, I promise."],
           ["Take a break."]]


@pytest.fixture(scope="module")
def policy():
    cfg = PolicyConfig(backbone="tiny-gpt2", max_sentence_tokens=10, max_context_tokens=32)
    pol = PartnerPolicy.from_backbone("tiny-gpt2", cfg, finetune="lora", seed=0)
    # a non-zero adapter and head, so the test exercises the LoRA path for real
    with torch.no_grad():
        for name, p in pol.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
        pol.head.weight.normal_(0, 0.5)
    return pol.eval()


def _check_logps_match(pol, acts):
    lp_pos, lp_sent = pol.log_prob(SEEKERS, WINDOWS, acts.positions, acts.sentence_ids)
    assert torch.allclose(lp_pos, acts.logp_position, atol=1e-4), (lp_pos, acts.logp_position)
    assert torch.allclose(lp_sent, acts.logp_sentence, atol=1e-3), (lp_sent, acts.logp_sentence)
    assert lp_pos.requires_grad and lp_sent.requires_grad


@pytest.mark.slow
def test_sampled_logps_equal_a_separate_forward_pass(policy):
    g = torch.Generator().manual_seed(1)
    # force one of each kind, including a replace and a stop, on windows of different lengths
    forced = [E.replace_class(1, 2), 0, E.insert_class(2, 2), E.stop_class(2)]
    acts = policy.act(SEEKERS, WINDOWS, sample=True, generator=g, positions=forced)
    assert acts.positions.tolist() == forced
    assert acts.sentence_ids[3].numel() == 0 and acts.logp_sentence[3] == 0 and acts.sentences[3] == ""
    assert all(acts.sentence_ids[i].numel() > 0 for i in range(3))
    assert all(float(x) < 0 for x in acts.logp_sentence[:3])
    _check_logps_match(policy, acts)
    acts = policy.act(SEEKERS, WINDOWS, sample=True, generator=g)
    _check_logps_match(policy, acts)


@pytest.mark.slow
def test_greedy_is_argmax_and_deterministic(policy):
    a = policy.act(SEEKERS, WINDOWS, sample=False)
    b = policy.act(SEEKERS, WINDOWS, sample=False)
    assert torch.equal(a.positions, a.position_logits.argmax(-1))
    assert a.sentences == b.sentences
    _check_logps_match(policy, a)


@pytest.mark.slow
def test_sampling_is_reproducible_with_a_generator(policy):
    a = policy.act(SEEKERS, WINDOWS, generator=torch.Generator().manual_seed(7))
    b = policy.act(SEEKERS, WINDOWS, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.positions, b.positions) and a.sentences == b.sentences


def test_cached_seeker_prefix_acts_as_the_whole_prompt(policy):
    """act with a prefix cache (the seeker parts computed once, reused by the next windows) picks the
    same positions and greedy sentences, with the same log-probabilities, as one pass over whole prompts."""
    forced = [E.replace_class(1, 2), 0, E.insert_class(2, 2), E.stop_class(2)]
    plain = policy.act(SEEKERS, WINDOWS, sample=False, positions=forced)
    cache: dict = {}
    first = policy.act(SEEKERS, WINDOWS, sample=False, positions=forced, prefix_cache=cache)
    assert len(cache) == len(set(SEEKERS))
    # the next window of the same seekers, in another order and batch size: prefixes come from the cache
    order = [2, 0, 1]
    again = policy.act([SEEKERS[i] for i in order], [WINDOWS[i] for i in order], sample=False,
                       positions=[forced[i] for i in order], prefix_cache=cache)
    for acts, idx in ((first, range(4)), (again, order)):
        assert acts.sentences == [plain.sentences[i] for i in idx]
        assert torch.allclose(acts.position_logits, plain.position_logits[list(idx)], atol=1e-4)
        assert torch.allclose(acts.logp_sentence, plain.logp_sentence[list(idx)], atol=1e-3)
    _check_logps_match(policy, first)


def test_prefix_ids_and_window_ids_make_the_state(policy):
    for s, w in zip(SEEKERS, WINDOWS):
        assert policy.prefix_ids(s) + policy.window_ids(w) == policy.state_ids(s, w)
    assert policy.tokenizer.decode(policy.prefix_ids(SEEKERS[1])).endswith("\nResponse:")


def test_invalid_positions_are_never_sampled(policy):
    g = torch.Generator().manual_seed(0)
    seekers, windows = ["hi"] * 64, [[]] * 32 + [["One."]] * 32
    acts = policy.act(seekers, windows, generator=g, max_new_tokens=1)
    for w, p in zip(windows, acts.positions.tolist()):
        assert E.valid_classes(len(w), 2)[p]
    assert set(acts.positions[:32].tolist()) <= {0, E.stop_class(2)}


def test_long_seeker_never_drops_the_window(policy):
    ids = policy.state_ids(SEEKERS[2], WINDOWS[2])
    text = policy.tokenizer.decode(ids)
    assert "It gets better, I promise." in text and text.endswith("\nEdit:")
    assert len(ids) < 32 + 32 + 20


def test_sentence_stops_at_sentence_end(policy):
    tok = policy.tokenizer
    assert policy._stops(tok(" I am so sorry.")["input_ids"])
    assert policy._stops(tok(" Really?!")["input_ids"])
    assert not policy._stops(tok(" I am so")["input_ids"])
    assert not policy._stops(tok(" ...")["input_ids"])  # no word yet: not a sentence
    assert policy._stops(tok(" okay")["input_ids"] + [tok.eos_token_id])
    assert policy.decode_sentence(tok(" Hugs.")["input_ids"] + [tok.eos_token_id]) == "Hugs."


def test_top_p_keeps_only_the_nucleus():
    logits = torch.tensor([[3.0, 2.9, -5.0, -5.0]])
    g = torch.Generator().manual_seed(0)
    draws = {int(PartnerPolicy._sample(logits, 0.5, 1.0, g)) for _ in range(50)}
    assert draws == {0}
    draws = {int(PartnerPolicy._sample(logits, 0.92, 1.0, g)) for _ in range(200)}
    assert draws == {0, 1}


def test_save_and_load_roundtrip(policy, tmp_path):
    (tmp_path / "pol").mkdir()
    (tmp_path / "pol" / "README.md").write_text("our model card\n")
    policy.save_pretrained(tmp_path / "pol")
    # the card is ours, not PEFT's auto card; no scratch folder is left behind
    assert (tmp_path / "pol" / "README.md").read_text() == "our model card\n"
    assert sorted(p.name for p in (tmp_path / "pol").iterdir()) == [
        "README.md", "adapter_config.json", "adapter_model.safetensors", "policy_config.json",
        "position_head.safetensors"]
    loaded = PartnerPolicy.load(str(tmp_path / "pol"), policy.cfg)
    pos = torch.tensor([0, 0, 1, 5])
    ids = [torch.tensor([40, 716, 13])] * 4
    a = policy.log_prob(SEEKERS, WINDOWS, pos, ids)
    b = loaded.log_prob(SEEKERS, WINDOWS, pos, ids)
    assert torch.allclose(a[0], b[0], atol=1e-5) and torch.allclose(a[1], b[1], atol=1e-4)
    assert not any(p.requires_grad for p in loaded.model.parameters())


@pytest.mark.slow
def test_a_gradient_step_on_logp_raises_it(policy):
    """The sign check RL depends on: ascending log p of an action makes it more likely."""
    import copy

    pol = copy.deepcopy(policy)
    for n, p in pol.model.named_parameters():
        p.requires_grad_("lora_" in n)
    acts = pol.act(SEEKERS, WINDOWS, generator=torch.Generator().manual_seed(3))
    params = [p for p in pol.parameters() if p.requires_grad]
    before = sum(pol.log_prob(SEEKERS, WINDOWS, acts.positions, acts.sentence_ids)).sum()
    (-before).backward()
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in params))
    with torch.no_grad():  # a small step along the normalised ascent direction
        for p in params:
            p -= 0.05 * p.grad / norm
    with torch.no_grad():
        after = sum(pol.log_prob(SEEKERS, WINDOWS, acts.positions, acts.sentence_ids)).sum()
    assert after > before.detach()


@pytest.mark.slow
def test_smollm2_policy_logps_match():
    cfg = PolicyConfig(max_sentence_tokens=6)
    pol = PartnerPolicy.from_backbone("smollm2-135m", cfg, finetune="none").eval()
    seekers, windows = [SEEKERS[1], SEEKERS[3]], [WINDOWS[1], WINDOWS[3]]
    acts = pol.act(seekers, windows, generator=torch.Generator().manual_seed(0), positions=[0, 1])
    lp_pos, lp_sent = pol.log_prob(seekers, windows, acts.positions, acts.sentence_ids)
    assert torch.allclose(lp_sent, acts.logp_sentence, atol=2e-3)
    assert all(s.strip() for s in acts.sentences)


@pytest.mark.slow
def test_shipped_policy_rewrites():
    from partner.config import SHIPPED_MODELS
    from partner.episode import rewrite_one_batch

    if not (SHIPPED_MODELS / "policy" / "policy_config.json").exists():
        pytest.skip("no shipped policy in models/policy")
    pol = PartnerPolicy.load()
    assert pol.finetune == "merged" and pol.k == 2
    (text, edits), = rewrite_one_batch(pol, ["My dog died yesterday and I can't stop crying."],
                                       ["Get another dog."], sample=False)
    assert len(edits) <= pol.cfg.max_edits
    if not any(e.action == "replace" for e in edits):
        assert "Get another dog." in text
    if edits:
        assert text != "Get another dog." and all(e.sentence in text for e in edits)


@pytest.mark.parametrize("compact_at", [1e-9, 1.0])
def test_finished_rows_leave_the_batch_at_once_or_later_with_the_same_outputs(policy, monkeypatch, compact_at):
    """A finished sentence's row leaves the decoding batch when enough rows have finished
    (``_COMPACT_AT``); until then it is fed but its output unused: the same sentences and log-probs."""
    import partner.policy as P

    seekers, windows = SEEKERS * 3, WINDOWS * 3
    monkeypatch.setattr(P, "_COMPACT_AT", 0.25)
    want = policy.act(seekers, windows, generator=torch.Generator().manual_seed(3))
    monkeypatch.setattr(P, "_COMPACT_AT", compact_at)
    got = policy.act(seekers, windows, generator=torch.Generator().manual_seed(3))
    assert got.sentences == want.sentences and torch.equal(got.positions, want.positions)
    assert torch.allclose(got.logp_sentence, want.logp_sentence, atol=1e-4)
    assert len({len(s) for s in got.sentence_ids if len(s)}) > 1  # rows finished at different steps
