"""Reward functions over batches of (seeker, original, rewritten, edit); they train nothing.

Every reward has one signature, ``fn(seekers, originals, rewrites, edits=None) -> list[float]``
(one float per sample, no gradients; a ``edit.Scores`` list when it also names the parts behind
them): ``empathy.EmpathyReward`` (r_e), ``fluency.FluencyReward``
(r_f), ``coherence.CoherenceReward`` (r_c), ``mi.MutualInformationReward`` (r_m),
``novelty.NoveltyPenalty`` (r_n, ours: a sentence many recent episodes wrote costs reward), and
``stack.RewardStack`` combines them with the config's weights (returning a ``RewardOutput`` with
every component). ``trl.as_trl_reward`` adapts any of them to TRL. Nothing loads at import time.
"""
