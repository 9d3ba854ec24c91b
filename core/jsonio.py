"""JSONL in and out: errors that name file, line and field; atomic writes; resumable appends.

Every command that maps an input JSONL file to an output one goes through ``process_jsonl`` and so
keeps one contract (README, "Input and output contract"): the output is never the input; each
non-blank input line, decodable or not, yields one output line or an error record
(``{"line": n, "error": ..., "field": ...}``), in input order; each output line carries
``_input_sha`` (its input line) and ``_run_sha`` (the command, method and config), which a resumed
run checks line by line; the output is locked while a run writes it; ``--overwrite`` replaces the
old output only once the new one is complete; the exit status is EXIT_LINE_ERRORS when any line
failed.

Under a multi-process launcher (``accelerate launch`` or ``torchrun``: ``RANK`` / ``WORLD_SIZE`` in
the environment, see ``launched_shard``) each process takes a contiguous run of whole batches of the
lines still to do, writes them to its own resumable part beside the output
(``.OUT.part-R-of-W``), and the first process merges the parts, in input order, into the output
once every part is complete (the parts must be on a file system all processes see).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator


EXIT_LINE_ERRORS = 4  # exit status of a run that finished but wrote at least one error record

BOM = b"\xef\xbb\xbf"


class UsageError(ValueError):
    """A run that must not start: a bad -o, a bad --batch-size, an output another run is writing."""


class DataError(ValueError):
    """Bad input, located: file, line (1-based) and field."""

    def __init__(self, path: str | os.PathLike, line: int | None, field: str | None, message: str):
        self.path, self.line, self.field, self.message = str(path), line, field, message
        where = str(path) + (f", line {line}" if line is not None else "")
        what = f", field '{field}'" if field else ""
        super().__init__(f"{where}{what}: {message}")

    def record(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "error": self.message}


@dataclass
class Row:
    """One parsed JSONL line: its 1-based number, the object (None when the line is not a JSON
    object) and, for a bad line, the error."""

    line: int
    data: dict[str, Any] | None
    error: DataError | None = None
    sha: str = ""  # short hash of the raw line: resumed runs check it (``_input_sha``)


def iter_json_objects(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; DataError at the first line that is not a
    JSON object. For files that must be well-formed as a whole (corpora, our own outputs)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, None, "file not found")
    for n, obj, err, _ in _object_lines(path):
        if err is not None:
            raise err
        yield n, obj


def json_type(value: Any) -> str:
    """A JSON value's kind in JSON's words (null, not NoneType), for error messages."""
    return {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number",
            bool: "true/false", type(None): "null"}.get(type(value), type(value).__name__)


def short_sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is out of range (numbers must be finite)")
    return value


def _raw_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) for every line. Lines end at \n only (a lone \r inside a line is part of
    it; a \r before the \n is dropped), and a UTF-8 byte-order mark at the start is skipped."""
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if n == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            yield n, raw.rstrip(b"\n").removesuffix(b"\r")


def _parse(path: Path, n: int, raw: bytes) -> tuple[dict[str, Any] | None, DataError | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, DataError(path, n, None, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} "
                                              "of the line); save the file as UTF-8")
    try:
        # strict=False: a raw control character (a lone CR) inside a string is read as itself
        obj = json.loads(text, strict=False, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        return None, DataError(path, n, None, f"not valid JSON (column {exc.colno}: {exc.msg})")
    except ValueError as exc:
        return None, DataError(path, n, None, str(exc))
    if not isinstance(obj, dict):
        return None, DataError(path, n, None, f"expected a JSON object, got {json_type(obj)}")
    return obj, None


def _object_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, DataError | None, bytes]]:
    """(line number, object, None, raw bytes) for every non-blank line that is a JSON object, else
    (line number, None, the DataError, raw bytes): the one JSONL parse loop the readers below share."""
    for n, raw in _raw_lines(path):
        if not raw.strip():
            continue
        obj, err = _parse(path, n, raw)
        yield n, obj, err, raw


def read_jsonl(path: str | os.PathLike, required: tuple[str, ...] = ("seeker_post", "response_post"),
               strict: bool = False, nonblank: tuple[str, ...] = ()) -> Iterator[Row]:
    """Yield a Row for every non-blank line of a JSONL file.

    Lines that are not JSON objects, or lack a required string field, or have a ``nonblank`` field
    that is empty, become Rows with an error (or raise it, with ``strict``). Extra fields pass
    through untouched.
    """
    path = Path(path)
    for n, data, err, raw in _object_lines(path):
        if err is None:
            for field in required:
                if field not in data:
                    err = DataError(path, n, field, "is missing")
                    break
                if not isinstance(data[field], str):
                    err = DataError(path, n, field, f"must be a string, got {json_type(data[field])}")
                    break
                if field in nonblank and not data[field].strip():
                    err = DataError(path, n, field, "is empty")
                    break
        if err is not None and strict:
            raise err
        # a field error keeps its parsed object: its id goes into the error record
        yield Row(n, data, err, short_sha(raw))


def _key(obj: dict[str, Any] | None, line: int) -> str:
    if obj is not None and obj.get("id") is not None:
        return str(obj["id"])
    return f"line {line}"


def completed_prefix(out_path: str | os.PathLike, rows: list[Row], run_sha: str | None = None) -> tuple[int, int]:
    """How many input rows an existing output file already covers (for resuming), and how many of
    those lines are error records.

    Outputs are written in input order, one line per input row (a result or an error record), so
    a resumed run skips the first k rows, but only after checking each of them: its ``_input_sha``
    must be that of the input line at the same place, and its ``_run_sha`` that of this run (same
    command, method and config), else we refuse rather than silently mix two inputs or two runs.
    """
    path = Path(out_path)
    if not path.exists():
        return 0, 0
    truncate_torn_tail(path)
    k = errors = 0
    again = "; pass --overwrite to start over, or choose another -o"
    for n, obj, err, _ in _object_lines(path):
        if err is not None:
            raise DataError(path, n, None, f"existing output is not JSONL ({err.message}){again}")
        if k >= len(rows):
            raise DataError(path, n, None, f"existing output has more lines than the input{again}")
        row = rows[k]
        want = _key(row.data, row.line) if row.data is not None else None
        got = obj.get("id")
        if want is not None and row.data.get("id") is not None and str(got) != want:
            raise DataError(path, n, "id", f"existing output has id {got!r} where the input has {want!r}: it "
                            f"belongs to another input{again}")
        if "_input_sha" not in obj or "_run_sha" not in obj:
            raise DataError(path, n, "_input_sha", "existing output line carries no _input_sha/_run_sha, so it "
                            "cannot be checked against the input (not written by a resumable run of this toolkit)"
                            + again)
        if obj["_input_sha"] != row.sha:
            raise DataError(path, n, "_input_sha", f"existing output line does not match input line {row.line} "
                            f"(the input changed, or lines were inserted or removed){again}")
        if run_sha is not None and obj["_run_sha"] != run_sha:
            raise DataError(path, n, "_run_sha", f"existing output line was made by another method or config "
                            f"(another command, --method, --model or --set){again}")
        errors += "error" in obj and "line" in obj
        k += 1
    return k, errors


def check_output(in_path: str | os.PathLike, out_path: str | os.PathLike) -> None:
    """Refuse an output that is the input (same path, hard link or symlink), a folder, under a file,
    or not writable: before any model loads, so a bad -o fails in a second, not after the load."""
    src, out = Path(in_path), Path(out_path)
    if (out.exists() and src.exists() and os.path.samefile(src, out)) or out.resolve() == src.resolve():
        raise UsageError(f"{out} is the input file {src} (same file, hard link or symlink); choose another -o")
    if out.is_dir():
        raise UsageError(f"{out} is a folder; -o takes a file name")
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{out}: {parent} is a file, not a folder")
    target = out if out.exists() else parent
    if not os.access(target, os.W_OK | (0 if out.exists() else os.X_OK)):
        raise UsageError(f"{out}: {target} is not writable")


def check_batch_size(n: int, flag: str = "--batch-size") -> int:
    if n < 1:
        raise UsageError(f"{flag} must be at least 1, got {n}")
    return n


def truncate_torn_tail(path: str | os.PathLike) -> None:
    """Drop a partial last line left by a kill mid-write, so appending resumes cleanly."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        data = fh.read()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        fh.truncate(cut)


class JsonlAppender:
    """Append JSON lines with a flush and fsync per batch, so a kill loses at most a batch."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        truncate_torn_tail(self.path)
        self._fh = open(self.path, "a", encoding="utf-8")

    def write(self, obj: dict[str, Any]) -> None:
        self.write_line(json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n")

    def write_line(self, line: str) -> None:
        self._fh.write(line)

    def flush(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self.flush()
        self._fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a file so readers see the old or the new content, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


@dataclass
class RunStats:
    total: int = 0
    skipped: int = 0  # already in the output from an earlier run
    written: int = 0
    errors: int = 0  # error records in the output: this run's and the kept ones

    @property
    def exit_status(self) -> int:
        return EXIT_LINE_ERRORS if self.errors else 0


def error_record(row: Row, error: Exception) -> dict[str, Any]:
    rec: dict[str, Any] = {}
    if row.data is not None and row.data.get("id") is not None:
        rec["id"] = row.data["id"]
    if isinstance(error, DataError):
        rec.update({"line": row.line, "field": error.field, "error": error.message})
    else:
        rec.update({"line": row.line, "field": None, "error": f"{type(error).__name__}: {error}"})
    return rec


def run_sha(run_key: Any) -> str:
    """Short hash of what makes a run's outputs what they are (command, method, model, config)."""
    return short_sha(json.dumps(run_key, sort_keys=True, default=str).encode())


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n"


def launched_shard() -> tuple[int, int]:
    """(this process's rank, number of processes) under ``accelerate launch`` / ``torchrun``; (0, 1) otherwise."""
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if world < 1 or not 0 <= rank < world:
        raise UsageError(f"RANK={rank} and WORLD_SIZE={world} in the environment do not make a process group")
    return rank, world


def shard_bounds(n: int, batch_size: int, rank: int, world: int) -> tuple[int, int]:
    """[start, stop) of the rows one process takes: whole batches, as even as batches allow, so every
    batch is the one a single process would have run (and a seeded batch gives the same output)."""
    batches = -(-n // batch_size)
    lo, hi = batches * rank // world, batches * (rank + 1) // world
    return min(n, lo * batch_size), min(n, hi * batch_size)


def process_jsonl(in_path: str | os.PathLike, out_path: str | os.PathLike, fn, batch_size: int = 16,
                  overwrite: bool = False, desc: str = "lines",
                  required: tuple[str, ...] = ("seeker_post", "response_post"), nonblank: tuple[str, ...] = (),
                  run_key: Any = None, shard: tuple[int, int] = (0, 1)) -> RunStats:
    """Map ``fn(list[dict]) -> list[dict]`` over a JSONL file in batches, resumably.

    One output line per input row, in order: ``fn``'s result, or an error record for a bad line
    (or for a record on which ``fn`` raised, or whose result holds NaN/Infinity: the batch is
    retried one record at a time, so one bad record never takes its batch down with it). Each line
    gets ``_input_sha`` and ``_run_sha`` (of ``run_key``: whatever makes the results what they are).
    Re-running onto an existing output resumes after its last complete line, once every kept line
    is checked against the input and ``run_key``. With ``overwrite`` the new output goes to a
    temporary file beside the old one and replaces it only when complete.

    ``shard`` = (rank, processes), e.g. ``launched_shard()``: with more than one process, this one
    writes only its share of the remaining lines to its part; rank 0 then merges (module doc). The
    stats are this process's part's, and rank 0's are the whole output's.
    """
    from filelock import FileLock, Timeout
    from tqdm.auto import tqdm

    rank, world = shard
    check_batch_size(batch_size)
    check_output(in_path, out_path)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # a process locks what it writes: its part, and (rank 0, which merges) the output
    mine = [out_path] if world == 1 else [_part_path(out_path, rank, world)] + ([out_path] if rank == 0 else [])
    locks = [FileLock(str(f.with_name(f.name + ".lock")), timeout=0) for f in mine]
    held = []
    try:
        for lock in locks:
            try:
                lock.acquire()
            except Timeout:
                raise UsageError(f"another run is writing {out_path} (lock {lock.lock_file}); wait for it to finish "
                                 "or choose another -o") from None
            held.append(lock)
        rows = list(read_jsonl(in_path, required=required, nonblank=nonblank))
        sha = run_sha(run_key)
        if world > 1:
            return _sharded(rows, out_path, fn, batch_size, overwrite, desc, sha, rank, world)
        target = out_path.with_name(f".{out_path.name}.new") if overwrite else out_path
        if overwrite:
            target.unlink(missing_ok=True)
        start, kept_errors = completed_prefix(target, rows, sha)
        stats = RunStats(total=len(rows), skipped=start, errors=kept_errors)
        try:
            _run(rows[start:], target, fn, batch_size, sha, stats, tqdm(total=len(rows), initial=start,
                                                                        unit=" lines", desc=desc, dynamic_ncols=True))
        except BaseException:
            if overwrite:
                target.unlink(missing_ok=True)
            raise
        if overwrite:
            os.replace(target, out_path)
        return stats
    finally:
        for lock in held:
            lock.release()
        if world > 1:  # a part's lock goes with the part
            Path(locks[0].lock_file).unlink(missing_ok=True)


def _part_path(out_path: Path, rank: int, world: int) -> Path:
    return out_path.with_name(f".{out_path.name}.part-{rank}-of-{world}")


def _sharded(rows: list[Row], out_path: Path, fn, batch_size: int, overwrite: bool, desc: str, sha: str,
             rank: int, world: int, poll_s: float = 1.0) -> RunStats:
    """One process's share of a multi-process run: its part, then (rank 0) the merge."""
    from tqdm.auto import tqdm

    start = 0 if overwrite else completed_prefix(out_path, rows, sha)[0]
    lo, hi = shard_bounds(len(rows) - start, batch_size, rank, world)
    lo, hi = start + lo, start + hi
    part = _part_path(out_path, rank, world)
    done = part.with_name(part.name + ".done")
    # the marker names the run and the rows, so a stale one from another run is never taken as done
    marker = {"run": sha, "start": start, "rows": [lo, hi]}
    if overwrite:
        part.unlink(missing_ok=True)
    done.unlink(missing_ok=True)
    k, kept_errors = completed_prefix(part, rows[lo:hi], sha)
    stats = RunStats(total=hi - lo, skipped=k, errors=kept_errors)
    _run(rows[lo + k:hi], part, fn, batch_size, sha, stats,
         tqdm(total=hi - lo, initial=k, unit=" lines", desc=f"{desc} [{rank + 1}/{world}]", dynamic_ncols=True))
    atomic_write_json(done, {**marker, "errors": stats.errors})
    if rank != 0:
        return stats
    # rank 0: wait for every part, then write the kept lines and the parts, in order, in one atomic step
    errors = [None] * world
    while True:
        for r in range(world):
            if errors[r] is None:
                lo_r, hi_r = shard_bounds(len(rows) - start, batch_size, r, world)
                f = _part_path(out_path, r, world).with_name(_part_path(out_path, r, world).name + ".done")
                try:
                    got = json.loads(f.read_text())
                except (OSError, ValueError):
                    continue
                if got.get("run") == sha and got.get("start") == start and got.get("rows") == [start + lo_r, start + hi_r]:
                    errors[r] = int(got["errors"])
        if all(e is not None for e in errors):
            break
        time.sleep(poll_s)
    kept_errors = 0 if overwrite else completed_prefix(out_path, rows, sha)[1]
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.merge.", dir=out_path.parent)
    try:
        with os.fdopen(fd, "wb") as dst:
            sources = ([] if overwrite or start == 0 else [out_path]) + [_part_path(out_path, r, world)
                                                                         for r in range(world)]
            for src in sources:
                if src.exists():
                    with open(src, "rb") as fh:
                        while chunk := fh.read(1 << 20):
                            dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as an ordinary new file, not mkstemp's 0600
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for r in range(world):
        p = _part_path(out_path, r, world)
        for f in (p, p.with_name(p.name + ".done")):
            f.unlink(missing_ok=True)
    return RunStats(total=len(rows), skipped=start, written=len(rows) - start,
                    errors=kept_errors + sum(errors))


def _run(pending: list[Row], target: Path, fn, batch_size: int, sha: str, stats: RunStats, bar) -> None:
    def one(r: Row) -> str | Exception:
        try:
            return _line({**fn([r.data])[0], "_input_sha": r.sha, "_run_sha": sha})
        except Exception as exc:  # noqa: BLE001
            return exc

    with JsonlAppender(target) as out, bar:
        for i in range(0, len(pending), batch_size):
            batch = pending[i:i + batch_size]
            good = [r for r in batch if r.error is None]
            try:
                results = {r.line: _line({**res, "_input_sha": r.sha, "_run_sha": sha})
                           for r, res in zip(good, fn([r.data for r in good]) if good else [])}
            except Exception:  # noqa: BLE001 - retry one by one to isolate the culprit
                results = {r.line: one(r) for r in good}
            for r in batch:
                res = r.error if r.error is not None else results[r.line]
                if isinstance(res, Exception):
                    if isinstance(res, ValueError) and "JSON compliant" in str(res):
                        res = DataError("output", r.line, None, "the result holds NaN or Infinity, which JSON "
                                        "cannot carry")
                    out.write_line(_line({**error_record(r, res), "_input_sha": r.sha, "_run_sha": sha}))
                    stats.errors += 1
                else:
                    out.write_line(res)
                stats.written += 1
            out.flush()
            bar.update(len(batch))
