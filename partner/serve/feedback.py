"""The choices log of ``partner-serve --log FILE``, and the preference pairs it yields.

The log is JSONL, one event a line, appended (never rewritten):

- ``{"event": "shown", "request_id", "suggestion_id", "time", "seeker_post", "draft", "action", "position",
  "sentence", "sources", "gain", "mechanism"}``: one line per suggestion the page showed;
- ``{"event": "decision", "request_id", "suggestion_id", "time", "decision": "accepted" | "edited" |
  "dismissed", "sentence"}``: what the person did with it (``sentence``: the text they kept, for
  ``edited``). A later decision on the same suggestion replaces an earlier one (they changed their mind).

Appends are atomic: each event is one ``write`` of one line to a file opened with ``O_APPEND``, under a file
lock, so two servers (or two threads) writing the same log never interleave or tear a line.

``load_feedback_pairs`` turns logs into preference pairs, the records ``partner/ab/pairs.py`` makes from
``partner-ab`` ratings (``partner-train preference --set preference.feedback=LOG[,LOG...]`` trains on them beside
the ratings): for every draft (the same seeker post and draft, whichever request showed the
suggestion: the page asks twice, quick sources first), each reply the person accepted (the draft with that one edit, as
they kept it) is preferred to each reply they dismissed (the draft with that edit). Drafts where they only
accepted or only dismissed give no pair: nothing was compared.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from core.jsonio import DataError

DECISIONS = ("accepted", "edited", "dismissed")
RATER = "partner-serve"


class FeedbackLog:
    """Appends events to a JSONL file, one atomic write per line, under a lock (``filelock``)."""

    def __init__(self, path: str | os.PathLike):
        from filelock import FileLock

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.path) + ".lock")

    def append(self, events: list[dict]) -> None:
        if not events:
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        data = "".join(json.dumps({**e, "time": e.get("time", now)}, ensure_ascii=False) + "\n" for e in events)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # mental-health text: owner only
            try:
                os.write(fd, data.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)


def _need(rec: dict, fields: tuple[str, ...], path, n: int) -> None:
    for f in fields:
        if f not in rec:
            raise DataError(path, n, f, "missing")


def read_events(path: str | os.PathLike) -> tuple[dict, dict]:
    """(shown, decisions) of one log, both keyed by (request_id, suggestion_id); the last decision wins.
    Raises ``DataError`` naming the file, line and field of a line that does not fit."""
    shown: dict[tuple, dict] = {}
    decisions: dict[tuple, dict] = {}
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(path, n, None, f"not JSON ({exc.msg})") from None
            if not isinstance(rec, dict):
                raise DataError(path, n, None, "expected a JSON object")
            _need(rec, ("event", "request_id", "suggestion_id"), path, n)
            key = (rec["request_id"], rec["suggestion_id"])
            if rec["event"] == "shown":
                _need(rec, ("seeker_post", "draft", "action", "position", "sentence"), path, n)
                if rec["action"] not in ("insert", "replace"):
                    raise DataError(path, n, "action", f"must be insert or replace, got {rec['action']!r}")
                shown[key] = rec
            elif rec["event"] == "decision":
                _need(rec, ("decision",), path, n)
                if rec["decision"] not in DECISIONS:
                    raise DataError(path, n, "decision", f"must be one of {', '.join(DECISIONS)}, "
                                                         f"got {rec['decision']!r}")
                if key not in shown:
                    raise DataError(path, n, "suggestion_id", f"a decision on {key[1]!r} of request {key[0]!r}, "
                                                              "which no earlier line shows")
                decisions[key] = {**rec, "line": n}
            else:
                raise DataError(path, n, "event", f"must be shown or decision, got {rec['event']!r}")
    return shown, decisions


def load_feedback_pairs(paths) -> list:
    """Preference pairs (``partner.ab.pairs.PreferencePair``) from ``partner-serve`` logs, one per (kept,
    dismissed) reply of the same draft: ``reply_a`` is the draft with an accepted (or edited and kept)
    edit, ``reply_b`` the same draft with a dismissed one, ``answer`` "A" on the ``overall`` question. ``input``
    is ``serve-`` and a hash of the seeker post (splits group by it), ``rater`` is ``partner-serve`` (the log does
    not say who decided), ``where`` the file and line of the decision on ``reply_a``."""
    import hashlib

    from partner.ab.pairs import PreferencePair
    from partner.serve.suggest import apply_one

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    pairs = []
    for path in paths:
        shown, decisions = read_events(path)
        by_draft: dict[tuple[str, str], dict[str, dict]] = {}
        for key, d in sorted(decisions.items(), key=lambda kv: kv[1]["line"]):
            s = shown[key]
            sentence = (d.get("sentence") or s["sentence"]) if d["decision"] == "edited" else s["sentence"]
            if not str(sentence).strip():
                raise DataError(path, d["line"], "sentence", "empty for an edited suggestion")
            reply = apply_one(_sentences(s["draft"]), s["action"], int(s["position"]), str(sentence).strip())
            side = "dismissed" if d["decision"] == "dismissed" else "kept"
            group = by_draft.setdefault((s["seeker_post"], s["draft"]), {"kept": {}, "dismissed": {}})
            group[side].setdefault(reply, {"id": key[1], "line": d["line"], "decision": d["decision"],
                                           "sources": "+".join(s.get("sources") or [])})
        for (seeker, _), group in by_draft.items():
            input_id = "serve-" + hashlib.sha1(seeker.encode("utf-8")).hexdigest()[:12]
            for a, ka in group["kept"].items():
                for b, kb in group["dismissed"].items():
                    if a == b:
                        continue
                    pairs.append(PreferencePair(
                        seeker_post=seeker, reply_a=a, reply_b=b, question="overall", answer="A", rater=RATER,
                        item_id=f"serve-{ka['id']}-{kb['id']}", input=input_id,
                        system_a=f"{ka['decision']}:{ka['sources']}", system_b=f"dismissed:{kb['sources']}",
                        harm=None, study=f"partner-serve:{Path(path).name}", where=f"{path}, line {ka['line']}"))
    return pairs


def _sentences(text: str) -> list[str]:
    from core.text import split_sentences

    return split_sentences(text)
