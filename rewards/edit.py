"""What every reward shares: the edit it sees (the policy's action on the edit window), the batch
check, and ``Scores``, the list of floats a reward returns."""

from __future__ import annotations

from dataclasses import dataclass, field


class Scores(list):
    """A reward's per-sample floats (a plain ``list``), plus ``details``: the named parts behind them
    (e.g. f_e before and after), one float per sample each, for the logs. ``RewardStack`` adds every
    component's details to its output without knowing which component it is."""

    def __init__(self, values=(), details: dict[str, list[float]] | None = None):
        super().__init__(float(v) for v in values)
        self.details = dict(details or {})


@dataclass
class EditInfo:
    candidate: str             # generated sentence ("" for stop or deletion)
    window: list[str] = field(default_factory=list)  # the window's sentences BEFORE the edit
    replaced: int | None = None  # index in window of the replaced sentence; None for insert / stop
    action: str = "insert"     # "insert" | "replace" | "stop"
    position: int | None = None  # sentence index in the full response (informational; rewards ignore it)

    def context(self) -> list[str]:
        """The window sentences the candidate must cohere with: all but a replaced one."""
        return [s for i, s in enumerate(self.window) if i != self.replaced and s.strip()]

    @classmethod
    def from_dict(cls, d: "EditInfo | dict | None") -> "EditInfo | None":
        """Accept an EditInfo, a plain dict with the same fields (a dataset column), or None."""
        if d is None or isinstance(d, EditInfo):
            return d
        return cls(candidate=d.get("candidate", "") or "", window=list(d.get("window") or []),
                   replaced=d.get("replaced"), action=d.get("action", "insert"), position=d.get("position"))


def check_batch(seekers, originals, rewrites, edits=None) -> None:
    """Every reward takes parallel lists: one seeker, original, rewrite (and edit) per sample."""
    n = len(seekers)
    if len(originals) != n or len(rewrites) != n or (edits is not None and len(edits) != n):
        raise ValueError(f"batch lengths differ: {n} seekers, {len(originals)} originals, {len(rewrites)} rewrites"
                         + ("" if edits is None else f", {len(edits)} edits"))
