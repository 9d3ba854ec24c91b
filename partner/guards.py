"""Rewrite-time guards: generated sentences that must never reach a seeker.

Five failure kinds, all seen in trained agents' test-split rewrites (see the PARTNER model card):

- **risk words**: the sentence names death, suicide or self-harm ("Have you tried to die?", "Have you
  tried cutting yourself?", both written by agents trained against the classifier for suicidal
  seekers; docs/experiments.md). The classifier scores such a question as an exploration. A rewriter
  never brings these words into a response on its own; whether and how to ask about suicide is the
  supporter's call under the platform's crisis protocol. A fixed word list (``rewards.sentence_guard.RISK_TERMS``),
  so it also rejects harmless uses ("I'd die for a coffee"): a rejected sentence only becomes a stop.
- **unsafe topics**: the sentence brings in sex, alcohol or drugs, an eating-disorder behaviour, a
  weapon or pills, or revenge ("Have you tried to starve yourself?" to a seeker whose mother told her to
  starve, "Have you tried to get a hooker?", sexual questions of suicidal seekers: agents trained with
  the post-fit reward, found by the hand audit in docs/experiments.md). The same rule as risk words, its own list
  (``rewards.sentence_guard.UNSAFE_TERMS``) and switch (``rewrite.block_unsafe_topics``).
- **seeker copy**: the sentence repeats the seeker's own words as the supporter's ("I'm planning on
  killing myself and ..."). The empathy classifier scores such first-person emotional statements as
  emotional reactions, so the reward stack does not punish them; the warm start learnt it and RL
  only reduced it. Measured by the share of the sentence's word trigrams that also occur in the
  seeker post.
- **response copy**: the sentence repeats another sentence of the response it is written into
  (inserting "I feel the same way." in front of "I feel the same way. I'm angry ...", or its own
  "I'm sorry to hear that." a second time): 25 % of the raw 50-step agent's written sentences on
  the test split. It adds nothing; the classifier may still score it. Measured by the share of the sentence's word trigrams that occur in the response's
  other sentences (a replaced sentence does not count: rewording it is an edit, not a copy).
- **degenerate repetition**: greedy decoding loops ("I'm sorry, I'm sorry, I'm sorry, ..."). Measured
  by the share of the sentence's word trigrams that repeat an earlier trigram of the same sentence.

A sentence at or over a threshold is rejected and the step becomes *stop* (the response is left as it
was in that window). Tokens are lower-cased words (punctuation dropped), so "I'm sorry, I'm sorry" is
a repetition. Sentences shorter than three words have no trigrams and always pass.

The guards act on rewriting (``partner-rewrite``, ``rewrite.block_risk_terms``,
``rewrite.block_unsafe_topics``, ``rewrite.max_seeker_copy``,
``rewrite.max_response_copy`` and ``rewrite.max_repetition``; false or 0 switches one off). RL training sees
the raw policy, so the logged rewards are the agent's own. ``partner-eval rewrites`` reports the same
five shares for any output, and the share of written sentences that are questions.

The checks themselves (``SentenceGuard``, ``seeker_copy``, ``self_repetition``, ``words``) live in
``rewards.sentence_guard`` (pure text, shared with the novelty penalty); they are re-exported here.
"""

from __future__ import annotations

from rewards.sentence_guard import SentenceGuard, seeker_copy, self_repetition, words  # noqa: F401 (re-exported)
