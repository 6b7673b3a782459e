"""The snapshot file: one self-describing JSON document (gzip-compressed when the name ends in
``.gz``), written atomically and never over an existing file unless asked.

Layout (see docs/snapshot-format.md)::

    {"format": "journey.snapshot", "version": 1, "snapshot": {...HostSnapshot...}}

The snapshot is encoded with ``journey.model.codec`` except for two parts:

* ``iptables``: each dump is stored as its raw text with family, backend and source only, and
  parsed again on load with ``parse_iptables_save`` (a newer parser re-reads old files; a dump
  that could not be parsed when it was taken is marked ``"unparsed": true`` and loads without
  tables if it still cannot be parsed).
* ``raw``: a raw dump whose text is the same as an iptables dump's is stored as a reference
  (``"text_of": "iptables[N]"``) instead of a second copy of the text.

Must not depend on textual or rich. Errors are ``SnapshotError`` naming the file and the field.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import json
import os
import tempfile
import zlib
from pathlib import Path
from typing import Any

from journey.errors import JourneyError, SnapshotError
from journey.model.codec import from_data, to_data
from journey.model.family import Family
from journey.model.ruleset import Backend, IptablesDump
from journey.model.snapshot import HostSnapshot, RawDump

FORMAT = "journey.snapshot"
VERSION = 1  # the version this journey writes and the newest it reads


def _is_gzip_name(path: Path) -> bool:
    return path.name.endswith(".gz")


def snapshot_to_data(snap: HostSnapshot) -> dict[str, Any]:
    """The whole document (``format``, ``version``, ``snapshot``) as JSON-able data."""
    body = to_data(dataclasses.replace(snap, iptables=(), raw=()))
    dumps = []
    by_text: dict[str, int] = {}
    for i, d in enumerate(snap.iptables):
        entry: dict[str, Any] = {"family": d.family.value, "backend": d.backend.value,
                                 "source": d.source, "text": d.text}
        if not d.tables and _has_tables(d.text):
            entry["unparsed"] = True
        dumps.append(entry)
        by_text.setdefault(d.text, i)
    raws = []
    for r in snap.raw:
        if r.text and r.text in by_text:
            raws.append({"name": r.name, "source": r.source,
                         "text_of": f"iptables[{by_text[r.text]}]"})
        else:
            raws.append(to_data(r))
    body["iptables"] = dumps
    body["raw"] = raws
    return {"format": FORMAT, "version": VERSION, "snapshot": body}


def _has_tables(text: str) -> bool:
    return any(line.startswith("*") for line in text.splitlines())


def save_snapshot(snap: HostSnapshot, path: str | os.PathLike[str], *, force: bool = False) -> None:
    """Write ``snap`` to ``path`` (gzip when it ends in ``.gz``), atomically.

    An existing file is never replaced unless ``force``: ``SnapshotError`` instead.
    """
    target = Path(path)
    if target.is_dir():
        raise SnapshotError("is a directory, not a snapshot file name", file=str(target))
    if target.exists() and not force:
        raise SnapshotError("already exists (use --force to overwrite)", file=str(target))
    data = snapshot_to_data(snap)
    try:
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (a "\udcXX" escape in imported JSON): escaped
        payload = json.dumps(data, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    if _is_gzip_name(target):
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise SnapshotError(f"cannot write here: {exc.strerror or exc}", file=str(target)) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        if force:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # atomic and refuses to replace a file created meanwhile
            except FileExistsError:
                raise SnapshotError("already exists (use --force to overwrite)",
                                    file=str(target)) from None
            except OSError:
                if target.exists():
                    raise SnapshotError("already exists (use --force to overwrite)",
                                        file=str(target)) from None
                os.replace(tmp, target)  # file systems without hard links
    except OSError as exc:
        raise SnapshotError(f"cannot write: {exc.strerror or exc}", file=str(target)) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _read_document(target: Path) -> Any:
    name = str(target)
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        raise SnapshotError("no such file", file=name) from None
    except IsADirectoryError:
        raise SnapshotError("is a directory, not a snapshot file", file=name) from None
    except OSError as exc:
        raise SnapshotError(f"cannot read: {exc.strerror or exc}", file=name) from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except EOFError:
            raise SnapshotError("truncated gzip file (the snapshot was cut off)", file=name) from None
        except (OSError, zlib.error) as exc:
            raise SnapshotError(f"damaged gzip file: {exc}", file=name) from None
    if not data.strip():
        raise SnapshotError("empty file, not a journey snapshot", file=name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SnapshotError(f"not a journey snapshot (not UTF-8 text at byte {exc.start})",
                            file=name) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        what = "truncated JSON (the snapshot was cut off)" if exc.pos >= len(text.rstrip()) else \
            f"not JSON: {exc.msg} (column {exc.colno})"
        raise SnapshotError(what, file=name, line=exc.lineno) from None


def load_snapshot(path: str | os.PathLike[str]) -> HostSnapshot:
    """Read a snapshot file written by ``save_snapshot`` (plain or gzip, by content)."""
    from journey.snapshot.iptables_save import long_lived_objects

    # what is built here lives as long as the snapshot: no GC passes over it meanwhile
    with long_lived_objects():
        return _load_snapshot(Path(path))


def _load_snapshot(target: Path) -> HostSnapshot:
    name = str(target)
    doc = _read_document(target)
    if not isinstance(doc, dict) or "format" not in doc:
        raise SnapshotError("not a journey snapshot (no \"format\" key)", file=name, field="format")
    if doc["format"] != FORMAT:
        raise SnapshotError(f"not a journey snapshot: format is {doc['format']!r}, expected "
                            f"{FORMAT!r}", file=name, field="format")
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SnapshotError(f"unknown version {version!r}", file=name, field="version")
    if version > VERSION:
        raise SnapshotError(f"written by a newer journey: version {version}, this journey reads "
                            f"{VERSION}", file=name, field="version")
    body = doc.get("snapshot")
    if not isinstance(body, dict):
        raise SnapshotError("missing or not an object", file=name, field="snapshot")
    body = dict(body)
    dumps_data = body.pop("iptables", [])
    raw_data = body.pop("raw", [])
    try:
        snap = from_data(HostSnapshot, body, "snapshot")
    except (ValueError, TypeError) as exc:
        field, _, msg = str(exc).partition(": ")
        raise SnapshotError(msg or str(exc), file=name, field=field if msg else None) from None
    dumps = _load_dumps(dumps_data, name)
    raw = _load_raw(raw_data, dumps, name)
    return dataclasses.replace(snap, iptables=dumps, raw=raw)


def _field(entry: dict[str, Any], key: str, where: str, name: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str):
        raise SnapshotError("missing or not text", file=name, field=f"{where}.{key}")
    return value


def _load_dumps(data: Any, name: str) -> tuple[IptablesDump, ...]:
    from journey.snapshot.iptables_save import parse_iptables_save

    if not isinstance(data, list):
        raise SnapshotError("expected a list", file=name, field="snapshot.iptables")
    out: list[IptablesDump] = []
    for i, entry in enumerate(data):
        where = f"snapshot.iptables[{i}]"
        if not isinstance(entry, dict):
            raise SnapshotError("expected an object", file=name, field=where)
        try:
            family = Family(_field(entry, "family", where, name))
        except ValueError:
            raise SnapshotError(f"{entry['family']!r} is not one of ['ipv4', 'ipv6']",
                                file=name, field=f"{where}.family") from None
        try:
            backend = Backend(_field(entry, "backend", where, name))
        except ValueError:
            raise SnapshotError(f"{entry['backend']!r} is not one of ['nft', 'legacy']",
                                file=name, field=f"{where}.backend") from None
        source = _field(entry, "source", where, name)
        text = _field(entry, "text", where, name)
        try:
            dump = parse_iptables_save(text, source=source, family=family, backend=backend)
        except JourneyError as exc:
            if entry.get("unparsed") is True:
                dump = IptablesDump(family, backend, source, text)
            else:
                raise SnapshotError(f"stored dump does not parse: {exc.text()}", file=name,
                                    field=f"{where}.text") from None
        out.append(dump)
    return tuple(out)


def _load_raw(data: Any, dumps: tuple[IptablesDump, ...], name: str) -> tuple[RawDump, ...]:
    if not isinstance(data, list):
        raise SnapshotError("expected a list", file=name, field="snapshot.raw")
    out: list[RawDump] = []
    for i, entry in enumerate(data):
        where = f"snapshot.raw[{i}]"
        if isinstance(entry, dict) and "text_of" in entry:
            ref = entry["text_of"]
            idx = -1
            if isinstance(ref, str) and ref.startswith("iptables[") and ref.endswith("]"):
                with contextlib.suppress(ValueError):
                    idx = int(ref[len("iptables["):-1])
            if not 0 <= idx < len(dumps):
                raise SnapshotError(f"refers to {ref!r}, which does not exist", file=name,
                                    field=f"{where}.text_of")
            out.append(RawDump(_field(entry, "name", where, name), dumps[idx].text,
                               _field(entry, "source", where, name)))
            continue
        try:
            out.append(from_data(RawDump, entry, where))
        except (ValueError, TypeError) as exc:
            field, _, msg = str(exc).partition(": ")
            raise SnapshotError(msg or str(exc), file=name, field=field if msg else None) from None
    return tuple(out)
