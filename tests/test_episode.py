import pytest
import torch

from partner import edits as E
from partner.config import PolicyConfig
from partner.episode import rewrite_one_batch, run_episodes

from conftest import STOP, ScriptedPolicy




def test_windows_advance_past_edits_and_max_edits_stops():
    responses = ["A one. B two. C three. D four. E five.", "", "Only one.", "A one. B two. C three."]
    scripts = [
        [(1, "New X."), (STOP, ""), (E.replace_class(0, 2), "New Y.")],   # insert, stop, replace -> 2 edits
        [(0, "Hi there.")],                                                 # empty response
        [(STOP, "")],                                                       # nothing to do
        [(E.replace_class(0, 2), ""), (STOP, "")],                          # deletion, then next window
    ]
    pol = ScriptedPolicy(scripts)
    eps = run_episodes(pol, ["0", "1", "2", "3"], responses, sample=True)
    assert pol.calls == 3  # batched: one act() per step for all live responses
    a = eps[0]
    assert pol.seen[0] == [["A one.", "B two."], ["C three.", "D four."], ["E five."]]
    assert a.text == "A one. New X. B two. C three. D four. New Y."
    assert [e.action for e in a.edits] == ["insert", "replace"] and len(a.steps) == 3
    assert eps[1].text == "Hi there." and pol.seen[1] == [[]]
    assert eps[2].text == "Only one." and eps[2].edits == [] and len(eps[2].steps) == 1
    # the deleted sentence's window is followed by the window right after it
    assert pol.seen[3] == [["A one.", "B two."], ["C three."]]
    assert eps[3].text == "B two. C three."
    assert eps[0].steps[0].logp_position == -0.5 and eps[0].steps[0].logp_sentence == -3.0


def test_max_edits_caps_the_episode():
    pol = ScriptedPolicy([[(0, "X."), (0, "Y."), (0, "Z.")]])
    pol.cfg.max_edits = 2
    eps = run_episodes(pol, ["0"], ["Aa one. Bb two. Cc three. Dd four. Ee five. Ff six."])
    assert len(eps[0].edits) == 2 and eps[0].text == "X. Aa one. Bb two. Y. Cc three. Dd four. Ee five. Ff six."


def test_edit_infos():
    pytest.importorskip("rewards.edit")
    pol = ScriptedPolicy([[(E.replace_class(1, 2), "Better."), (STOP, "")]])
    ep = run_episodes(pol, ["0"], ["Hi. Bad one. Bye."])[0]
    (info,) = ep.edit_infos()
    assert (info.candidate, info.window, info.replaced, info.action) == ("Better.", ["Hi.", "Bad one."], 1, "replace")


@pytest.mark.slow
def test_rewrite_with_the_tiny_gpt2_policy():
    from partner.policy import PartnerPolicy

    cfg = PolicyConfig(backbone="tiny-gpt2", max_sentence_tokens=3, max_context_tokens=16, max_edits=2)
    pol = PartnerPolicy.from_backbone("tiny-gpt2", cfg, finetune="none", seed=0).eval()
    seekers = ["I feel alone.", "Work is hard."]
    responses = ["That sucks. Call a friend. Go outside.", ""]
    out = rewrite_one_batch(pol, seekers, responses, cfg, sample=False)
    again = rewrite_one_batch(pol, seekers, responses, cfg, sample=False)
    assert out == again  # greedy is deterministic
    for (text, edits), orig in zip(out, responses):
        assert len(edits) <= 2 and isinstance(text, str)
        assert ".." not in text.replace("...", "")
    eps = run_episodes(pol, seekers, responses, cfg, sample=True, generator=torch.Generator().manual_seed(0))
    for ep in eps:
        for st in ep.steps:
            lp_pos, lp_sent = pol.log_prob([st.seeker], [st.window], [st.position], [st.sentence_ids])
            assert float(lp_pos) == pytest.approx(st.logp_position, abs=1e-4)
            assert float(lp_sent) == pytest.approx(st.logp_sentence, abs=1e-3)
