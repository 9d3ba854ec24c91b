"""JSONL in and out: errors that name file, line and field; atomic writes; resumable appends.

Every command that maps an input JSONL file to an output one follows the same contract: each
input line yields an output line or an error record (``{"line": n, "error": ..., "field": ...}``),
in input order, and output is appended line by line with a flush so an interrupted run loses
nothing it had written.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator


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


def iter_json_objects(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; DataError at the first line that is not a
    JSON object. For files that must be well-formed as a whole (corpora, our own outputs)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, None, "file not found")
    for n, obj, err in _object_lines(path):
        if err is not None:
            raise err
        yield n, obj


def _object_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, DataError | None]]:
    """(line number, object, None) for every non-blank line that is a JSON object, else
    (line number, None, the DataError): the one JSONL parse loop the readers below share."""
    with open(path, encoding="utf-8") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                yield n, None, DataError(path, n, None, f"not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(obj, dict):
                yield n, None, DataError(path, n, None, f"expected a JSON object, got {type(obj).__name__}")
                continue
            yield n, obj, None


def read_jsonl(path: str | os.PathLike, required: tuple[str, ...] = ("seeker_post", "response_post"),
               strict: bool = False) -> Iterator[Row]:
    """Yield a Row for every non-blank line of a JSONL file.

    Lines that are not JSON objects, or lack a required string field, become Rows with an error
    (or raise it, with ``strict``). Extra fields pass through untouched.
    """
    path = Path(path)
    for n, data, err in _object_lines(path):
        if err is None:
            for field in required:
                if field not in data:
                    err = DataError(path, n, field, "is missing")
                    break
                if not isinstance(data[field], str):
                    err = DataError(path, n, field, f"must be a string, got {type(data[field]).__name__}")
                    break
        if err is not None and strict:
            raise err
        # a field error keeps its parsed object: its id goes into the error record
        yield Row(n, data, err)


def _key(obj: dict[str, Any] | None, line: int) -> str:
    if obj is not None and obj.get("id") is not None:
        return str(obj["id"])
    return f"line {line}"


def completed_prefix(out_path: str | os.PathLike, rows: list[Row]) -> int:
    """How many input rows an existing output file already covers (for resuming).

    Outputs are written in input order, one line per input row (a result or an error record), so
    a resumed run skips the first k rows. Where ids exist, they must match the input's, else the
    output belongs to another input and we refuse rather than silently mix the two.
    """
    path = Path(out_path)
    if not path.exists():
        return 0
    truncate_torn_tail(path)
    k = 0
    for n, obj, err in _object_lines(path):
        if err is not None:
            raise DataError(path, n, None, f"existing output is not JSONL ({err.message}); move it away or pass "
                            "--overwrite")
        if k >= len(rows):
            raise DataError(path, n, None, "existing output has more lines than the input; pass --overwrite")
        row = rows[k]
        want = _key(row.data, row.line) if row.data is not None else None
        got = obj.get("id")
        if want is not None and row.data.get("id") is not None and str(got) != want:
            raise DataError(path, n, "id", f"existing output has id {got!r} where the input has {want!r}: it "
                            "belongs to another input; pass --overwrite or another -o")
        k += 1
    return k


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
        self._fh.write(json.dumps(obj, ensure_ascii=False) + "\n")

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
    errors: int = 0


def error_record(row: Row, error: Exception) -> dict[str, Any]:
    rec: dict[str, Any] = {}
    if row.data is not None and row.data.get("id") is not None:
        rec["id"] = row.data["id"]
    if isinstance(error, DataError):
        rec.update({"line": row.line, "field": error.field, "error": error.message})
    else:
        rec.update({"line": row.line, "field": None, "error": f"{type(error).__name__}: {error}"})
    return rec


def process_jsonl(in_path: str | os.PathLike, out_path: str | os.PathLike, fn, batch_size: int = 16,
                  overwrite: bool = False, desc: str = "lines",
                  required: tuple[str, ...] = ("seeker_post", "response_post")) -> RunStats:
    """Map ``fn(list[dict]) -> list[dict]`` over a JSONL file in batches, resumably.

    One output line per input row, in order: ``fn``'s result, or an error record for a bad line
    (or for a record on which ``fn`` raised: the batch is retried one record at a time, so one
    bad record never takes its batch down with it). Re-running onto an existing output resumes
    after its last complete line.
    """
    from tqdm.auto import tqdm

    rows = list(read_jsonl(in_path, required=required))
    out_path = Path(out_path)
    if overwrite and out_path.exists():
        out_path.unlink()
    start = completed_prefix(out_path, rows)
    stats = RunStats(total=len(rows), skipped=start)
    pending = rows[start:]
    with JsonlAppender(out_path) as out, tqdm(total=len(rows), initial=start, unit=" lines", desc=desc,
                                             dynamic_ncols=True) as bar:
        for i in range(0, len(pending), batch_size):
            batch = pending[i:i + batch_size]
            good = [r for r in batch if r.error is None]
            try:
                results = dict(zip((r.line for r in good), fn([r.data for r in good]) if good else []))
            except Exception:  # noqa: BLE001 - retry one by one to isolate the culprit
                results = {}
                for r in good:
                    try:
                        results[r.line] = fn([r.data])[0]
                    except Exception as exc:  # noqa: BLE001
                        results[r.line] = exc
            for r in batch:
                res = r.error if r.error is not None else results[r.line]
                if isinstance(res, Exception):
                    out.write(error_record(r, res))
                    stats.errors += 1
                else:
                    out.write(res)
                stats.written += 1
            out.flush()
            bar.update(len(batch))
    return stats
