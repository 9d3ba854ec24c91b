"""Read partner-rewrite outputs of several systems and line them up input by input.

Every system must have been run over the same inputs. Records are matched by ``id`` where all
records carry one, else by line order; in both cases the seeker post and the original response
must agree across files, and any disagreement is an error naming the file and line. Error
records (``{"line", "field", "error"}``, no ``rewritten_response``) mark an input a system failed
on: the comparisons that need it are left out and reported, never silently dropped.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.jsonio import DataError, iter_json_objects, json_type

log = logging.getLogger(__name__)

ORIGINAL = "original"


@dataclass
class Record:
    line: int
    data: dict[str, Any]

    @property
    def is_error(self) -> bool:
        return "rewritten_response" not in self.data


@dataclass
class Input:
    """One input (seeker post + original response) and each system's response to it."""

    key: str                      # the input's id, or "line N" when the files carry no ids
    seeker_post: str
    response_post: str
    responses: dict[str, str] = field(default_factory=dict)   # system -> rewritten response
    failed: dict[str, str] = field(default_factory=dict)      # system -> why it has none


@dataclass
class Systems:
    names: list[str]
    files: dict[str, str]          # system -> path ("" for the original)
    sha256: dict[str, str]         # system -> sha256 of the file
    inputs: list[Input]
    matched_by: str                # "id" or "line"
    exclusions: list[str]          # human-readable notes on every input a system lacks


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _pair_hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps([data["seeker_post"], data["response_post"]]).encode()).hexdigest()[:16]


def read_rewrites(path: str | Path) -> list[Record]:
    """Parse one partner-rewrite output; malformed lines are errors (not error records)."""
    path = Path(path)
    records = []
    for n, data in iter_json_objects(path):
        rec = Record(n, data)
        if rec.is_error:
            if "error" not in data:
                raise DataError(path, n, "rewritten_response", "is missing (and this is not an error record "
                                "with an 'error' field): is this a partner-rewrite output?")
        else:
            for f in ("seeker_post", "response_post", "rewritten_response"):
                if not isinstance(data.get(f), str):
                    raise DataError(path, n, f, "is missing" if f not in data else
                                    f"must be a string, got {json_type(data[f])}")
        if data.get("id") is not None and not isinstance(data["id"], (str, int)):
            raise DataError(path, n, "id", f"must be a string or integer, got {json_type(data['id'])}")
        records.append(rec)
    if not records:
        raise DataError(path, None, None, "is empty")
    return records


def system_names(files: list[str], names: list[str] | None, include_original: str | None) -> list[str]:
    if names:
        if len(names) != len(files):
            raise DataError("--name", None, None, f"{len(names)} names for {len(files)} files; give one per file")
    else:
        names = [Path(f).name.removesuffix(".jsonl").removesuffix(".json") for f in files]
    if include_original:
        names = names + [include_original]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError("--name", None, None, f"duplicate system name(s) {dupes}; name the systems with --name "
                        + ("(the unedited response is called --original-name)" if include_original in dupes else ""))
    for n in names:
        if not n.strip():
            raise DataError("--name", None, None, "system names must not be empty")
    return names


def load_systems(files: list[str], names: list[str] | None = None,
                 include_original: str | None = None) -> Systems:
    """Line up the outputs of several systems over the same inputs.

    ``include_original``: the name under which the unedited ``response_post`` joins as a system.
    """
    if len(files) + (1 if include_original else 0) < 2:
        raise DataError(files[0] if files else "files", None, None,
                        "an A/B study needs two systems: give two or more files, or one and --include-original")
    all_names = system_names(files, names, include_original)
    file_names = all_names[: len(files)]
    per_file = {name: read_rewrites(path) for name, path in zip(file_names, files)}
    paths = dict(zip(file_names, files))

    with_id = {name: [r for r in recs if r.data.get("id") is not None] for name, recs in per_file.items()}
    ok_recs = [(name, r) for name, recs in per_file.items() for r in recs if not r.is_error]
    if not ok_recs:
        raise DataError(files[0], None, None, "no file has a single rewritten response (only error records)")
    has_id = [r.data.get("id") is not None for _, r in ok_recs]
    if any(has_id) and not all(has_id):
        name, r = next((n, r) for n, r in ok_recs if r.data.get("id") is None)
        raise DataError(paths[name], r.line, "id", "is missing while other records carry ids: items are matched "
                        "by id, so ids must be on every record or on none")
    mode = "id" if all(has_id) else "line"

    inputs: list[Input] = []
    exclusions: list[str] = []
    if mode == "id":
        by_id: dict[str, dict[str, Record]] = {}
        order: list[str] = []
        for name in file_names:
            seen: dict[str, int] = {}
            for r in with_id[name]:
                k = str(r.data["id"])
                if k in seen:
                    raise DataError(paths[name], r.line, "id", f"duplicate id {k!r} (first at line {seen[k]})")
                seen[k] = r.line
                if k not in by_id:
                    by_id[k] = {}
                    order.append(k)
                by_id[k][name] = r
        for name in file_names:
            lacking = [k for k in order if name not in by_id[k]]
            unattributed = [r for r in per_file[name] if r.is_error and r.data.get("id") is None]
            if len(lacking) > len(unattributed):
                other = next(n for n in file_names if n != name and any(n in by_id[k] for k in lacking))
                raise DataError(paths[name], None, "id", f"has no record for id(s) {lacking[:5]}"
                                f"{' ...' if len(lacking) > 5 else ''} that {paths[other]} has: the files are not "
                                "over the same inputs")
            for r in unattributed:
                exclusions.append(f"{name}: error record at line {r.line} has no id ({r.data.get('error')}); "
                                  "the input it belongs to cannot be compared for this system")
        for k in order:
            group = by_id[k]
            good = {n: r for n, r in group.items() if not r.is_error}
            if not good:
                exclusions.append(f"input {k!r}: every system failed on it; left out")
                continue
            ref_name, ref = next(iter(good.items()))
            for n, r in good.items():
                for f in ("seeker_post", "response_post"):
                    if r.data[f] != ref.data[f]:
                        raise DataError(paths[n], r.line, f, f"differs from {paths[ref_name]} line {ref.line} for "
                                        f"id {k!r}: the files are not over the same inputs")
            inputs.append(_make_input(k, ref.data, group, file_names, exclusions))
    else:
        lengths = {n: len(recs) for n, recs in per_file.items()}
        first = file_names[0]
        for n in file_names[1:]:
            if lengths[n] != lengths[first]:
                raise DataError(paths[n], None, None, f"has {lengths[n]} records where {paths[first]} has "
                                f"{lengths[first]}: the files are not over the same inputs (records carry no id, "
                                "so they are matched by line order)")
        for i in range(lengths[first]):
            group = {n: per_file[n][i] for n in file_names}
            good = {n: r for n, r in group.items() if not r.is_error}
            if not good:
                exclusions.append(f"input at record {i + 1}: every system failed on it; left out")
                continue
            ref_name, ref = next(iter(good.items()))
            for n, r in good.items():
                if _pair_hash(r.data) != _pair_hash(ref.data):
                    raise DataError(paths[n], r.line, None, f"seeker_post/response_post differ from {paths[ref_name]} "
                                    f"line {ref.line} (records are matched by line order since they carry no id): "
                                    "the files are not over the same inputs")
            inputs.append(_make_input(f"line {ref.line}", ref.data, group, file_names, exclusions))

    if include_original:
        for inp in inputs:
            inp.responses[include_original] = inp.response_post
    sha = {n: file_sha256(paths[n]) for n in file_names}
    if include_original:
        sha[include_original] = ""
        paths[include_original] = ""
    for note in exclusions:
        log.warning("excluded: %s", note)
    return Systems(all_names, paths, sha, inputs, mode, exclusions)


def _make_input(key: str, ref: dict[str, Any], group: dict[str, Record], names: list[str],
                exclusions: list[str]) -> Input:
    inp = Input(key, ref["seeker_post"], ref["response_post"])
    for n in names:
        r = group.get(n)
        if r is None:
            inp.failed[n] = "no record (an error record without id)"
        elif r.is_error:
            inp.failed[n] = f"error record at line {r.line}: {r.data.get('error')}"
        else:
            inp.responses[n] = r.data["rewritten_response"]
    for n, why in inp.failed.items():
        exclusions.append(f"{n}: input {key!r} has {why}; its comparisons are left out")
    return inp
