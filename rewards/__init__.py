"""Reward functions over batches of (seeker, original, rewritten, edit); they train nothing.

Every reward has one signature, ``fn(seekers, originals, rewrites, edits=None) -> list[float]``
(one float per sample, no gradients): ``empathy.EmpathyReward`` (r_e), ``fluency.FluencyReward``
(r_f), ``coherence.CoherenceReward`` (r_c), ``mi.MutualInformationReward`` (r_m),
``sentence_guard.GuardPenalty`` (r_g, ours: the sentence guard as a penalty), and
``stack.RewardStack`` combines them with the config's weights (returning a ``RewardOutput`` with
every component). ``trl.as_trl_reward`` adapts any of them to TRL. Nothing loads at import time.
"""
