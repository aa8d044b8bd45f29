"""Rebuild the metadata cache from storage: reconcile, never wipe.

Storage is the truth. A file is present when its record (the .json sidecar) is; the
distribution itself is never opened. Rows whose record is gone are dropped, records the
database lacks are added. Several processes may run this at once: inserts skip rows that
another process added first.

On object stores a GET per record is what a rebuild costs, so the listing's etags are
matched against a snapshot of every record's text (one object, SNAPSHOT_KEY): only the
records rewritten or added since it was written are fetched. The snapshot is only a cache:
a stale, corrupt or missing one costs GETs, never a wrong answer, and whoever writes it
last wins. Local storage skips all this: reading its files is cheaper than stat()ing them.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..interfaces import ObjectNotFound, Storage, StorageError
from ..records import METADATA_SUFFIX, PREFIX, RECORD_SUFFIX, SNAPSHOT_KEY, FileRecord
from . import MetadataCache

log = logging.getLogger(__name__)
BATCH = 1000
# A reconcile that fetched more records than this (or over a tenth of them all) writes a
# fresh snapshot, so the next rebuild into an empty database reads it instead.
SNAPSHOT_AFTER = 1000


# What an interrupted write leaves behind is removed once it is certainly nobody's:
# storage may be shared by several servers, and another one's upload in progress looks
# the same for a moment (its distribution lands milliseconds before its record; its
# temporary file grows for as long as it is copied). No write takes this long.
DEBRIS_AGE = 600.0


@dataclass
class Debris:
    removed: int = 0  # distributions without a record, and temporary files
    recent: int = 0  # the same, too young to be sure; the next sweep looks again


@dataclass
class ReconcileResult:
    added: int = 0
    removed: int = 0
    unchanged: int = 0
    orphans: int = 0  # distributions without a record (an interrupted upload)
    debris: Debris | None = None  # what clear_debris removed, when asked to
    fetched: int = 0  # records read one by one (the rest came from the snapshot)
    snapshot_written: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class Shelf:
    """Where a repository's files are in storage: its id, its prefix, and which records
    under that prefix are its own. The hosted and proxy repositories of a server without
    declared repositories share packages/, and a record's origin says whose it is."""

    repository_id: int
    prefix: str = PREFIX
    owns: Callable[[FileRecord], bool] = lambda record: True


# The shelf of a database with one index (tests, and scripts that know no repositories).
DEFAULT_SHELVES = (Shelf(1, PREFIX),)


def scan(storage: Storage, prefix: str = PREFIX, with_etags: bool = False
         ) -> tuple[dict[str, str], set[str], dict[str, str] | None]:
    """(filename -> record key, set of distribution keys, record key -> etag) under the
    prefix. The etags come from the same listing (no extra request), and only when
    asked for: None otherwise, since a bare key listing can cost less."""
    records: dict[str, str] = {}
    dists: set[str] = set()
    etags: dict[str, str] | None = {} if with_etags else None
    if with_etags:
        listing = ((obj.key, obj.etag) for obj in storage.list(prefix))
    else:  # zip, not a generator: no cost per key on a local rebuild of 100,000 files
        listing = zip(storage.list_keys(prefix), itertools.repeat(None))
    for key, etag in listing:
        if key.endswith(RECORD_SUFFIX):
            records[key.rsplit("/", 1)[1][: -len(RECORD_SUFFIX)]] = key
            if etag:
                etags[key] = etag
        elif not key.endswith(METADATA_SUFFIX):
            dists.add(key)
    return records, dists, etags


def read_snapshot(storage: Storage) -> dict[str, tuple[str, str]]:
    """record key -> (etag, record text); empty when absent or unreadable."""
    try:
        raw = storage.read_bytes(SNAPSHOT_KEY)
    except StorageError:  # ObjectNotFound included: no instance has written one yet
        return {}
    try:
        data = json.loads(gzip.decompress(raw))
        return {key: (etag, text) for key, (etag, text) in data.items()
                if isinstance(key, str) and isinstance(etag, str) and isinstance(text, str)}
    except Exception as exc:  # any damage only means fetching the records one by one
        log.warning("ignoring unreadable records snapshot %s: %s", SNAPSHOT_KEY, exc)
        return {}


def write_snapshot(storage: Storage, entries: dict[str, tuple[str, str]]) -> bool:
    try:
        body = json.dumps({k: list(v) for k, v in entries.items()}, separators=(",", ":"))
        storage.put_bytes(SNAPSHOT_KEY, gzip.compress(body.encode(), compresslevel=6))
        return True
    except Exception:  # a cache: failing to write it must never fail a start-up
        log.warning("could not write the records snapshot %s", SNAPSHOT_KEY, exc_info=True)
        return False


def _worth_a_snapshot(fetched: int, total: int) -> bool:
    """Whether a run that fetched this many of total records writes a fresh snapshot."""
    return fetched > SNAPSHOT_AFTER or fetched * 10 > total


def _parse(key: str, raw: bytes) -> FileRecord | None:
    try:
        return FileRecord.from_json(raw)
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("skipping unreadable record %s: %s", key, exc)
        return None


def _pinnable(etag: str | None, raw: bytes) -> str | None:
    """The text read, when it may stand for the listed etag in the next snapshot; else None.

    The GET came after the listing, so the text is never older than the etag. It can be
    newer; that only costs a fetch next time, unless the object was rewritten back to
    bytes with the listed etag (a yank then an unyank, while this ran). Etags that never
    repeat (GCS, Azure, local) rule that out; an MD5 etag (S3) must be this text's MD5.
    """
    if not etag:
        return None
    try:
        text = raw.decode()
    except UnicodeDecodeError:  # JSON in UTF-16/32: not worth a snapshot entry
        return None
    bare = etag.strip('"')
    if len(bare) == 32 and all(c in "0123456789abcdef" for c in bare.lower()):
        if hashlib.md5(raw, usedforsecurity=False).hexdigest() != bare.lower():
            return None
    return text


def clear_debris(storage: Storage, prefixes=(PREFIX,), record_keys: set[str] | None = None,
                 dists: set[str] | None = None, min_age: float = DEBRIS_AGE) -> Debris:
    """Remove what uploads and fetches interrupted by a crash left in storage: a
    distribution without a record (with its .metadata sidecar, written after it) and a
    backend's temporary files, once older than min_age seconds. None of it was ever
    visible: a file exists only through its record. A .metadata on its own is not
    debris: the fallback keeps upstream sidecars that way. record_keys and dists: what a
    scan() of every prefix found just now, to spare another listing."""
    if record_keys is None or dists is None:
        record_keys, dists = set(), set()
        for prefix in prefixes:
            found, found_dists, _ = scan(storage, prefix)
            record_keys.update(found.values())
            dists |= found_dists
    result = Debris()
    cutoff = time.time() - min_age
    for key in dists:
        if key + RECORD_SUFFIX in record_keys:
            continue
        try:
            modified = storage.stat(key).modified
        except ObjectNotFound:
            continue
        if modified is None or modified.timestamp() > cutoff:
            result.recent += 1
            continue
        storage.delete(key)
        storage.delete(key + METADATA_SUFFIX)
        result.removed += 1
    if result.removed:
        log.warning("removed %d distribution(s) without a record left by interrupted uploads",
                 result.removed)
    removed, recent = storage.clear_interrupted_writes(min_age)
    result.removed += removed
    result.recent += recent
    return result


def reconcile(storage: Storage, session_factory, progress=None,
              refresh_snapshot: bool = False, debris: bool = True,
              shelves=DEFAULT_SHELVES) -> ReconcileResult:
    """Bring the database in line with storage, for every repository that stores files
    (shelves: where each keeps them).

    refresh_snapshot: also bring a missing or stale records snapshot up to date, fetching
    the records it lacks. A populated database needs no snapshot itself, so this runs
    where time is free (the background walk at start-up); it is what lets a later rebuild
    into an empty database (a lost database, a new deployment) skip one GET per file.
    debris: also clear what interrupted writes left (clear_debris); a start-up that
    serves only after the reconcile leaves that to a background thread.
    """
    started = time.monotonic()
    result = ReconcileResult()
    by_prefix: dict[str, list[Shelf]] = {}
    for shelf in shelves:
        by_prefix.setdefault(shelf.prefix, []).append(shelf)
    scans = {prefix: scan(storage, prefix, with_etags=storage.snapshot_rebuild)
             for prefix in by_prefix}
    record_keys: set[str] = set()
    dists: set[str] = set()
    etags: dict[str, str] | None = {} if storage.snapshot_rebuild else None
    for found, found_dists, found_etags in scans.values():
        record_keys.update(found.values())
        dists |= found_dists
        if etags is not None:
            etags.update(found_etags)
    result.orphans = sum(1 for d in dists if d + RECORD_SUFFIX not in record_keys)
    snapshot: dict[str, tuple[str, str]] | None = None  # read at most once, when needed
    fresh: dict[str, tuple[str, str]] = {}  # what this run read, for the next snapshot
    with session_factory() as session:
        cache = MetadataCache(session)
        wanted: list[tuple[str, list[Shelf]]] = []  # (record key, the shelves it may be on)
        gone: list[int] = []
        empty: dict[int, bool] = {}  # repository -> it had no files (a rebuild)
        for prefix, on_prefix in by_prefix.items():
            records = scans[prefix][0]
            known: dict[str, int] = {}
            for shelf in on_prefix:
                held = cache.all_filenames(shelf.repository_id)
                empty[shelf.repository_id] = not held
                for filename, (fid, _project) in held.items():
                    known[filename] = fid
            gone += [fid for fn, fid in known.items() if fn not in records]
            wanted += [(key, on_prefix) for fn, key in records.items() if fn not in known]
            result.unchanged += sum(1 for fn in known if fn in records)
        # Into a repository that had no files every key taken is one this run added.
        keys_taken = {rid: set() if was_empty else None for rid, was_empty in empty.items()}
        batches: dict[int, list[FileRecord]] = {}

        def take(key: str, rec: FileRecord, on: list[Shelf]) -> None:
            shelf = next((s for s in on if s.owns(rec)), None)
            if shelf is None:
                return
            batch = batches.setdefault(shelf.repository_id, [])
            batch.append(rec)
            if len(batch) >= BATCH:
                result.added += cache.bulk_add(shelf.repository_id, batch,
                                               keys_taken[shelf.repository_id])
                batches[shelf.repository_id] = []

        total = len(wanted)
        if progress:
            progress(0, total)
        done = 0
        to_fetch = wanted
        if etags is not None and wanted:
            snapshot = read_snapshot(storage)
            to_fetch = []
            for key, on in wanted:
                entry = snapshot.get(key)
                rec = None
                if entry is not None and entry[0] == etags.get(key):
                    # Parsed as bytes, as when it was fetched: json.loads detects a BOM or
                    # UTF-16 only in bytes, and _pinnable lets a UTF-8 BOM and ASCII-only
                    # UTF-16 (valid UTF-8) into the snapshot.
                    rec = _parse(key, entry[1].encode())
                if rec is None:
                    to_fetch.append((key, on))
                    continue
                take(key, rec, on)
                done += 1
        shelves_of = dict(to_fetch)
        for key, raw in storage.read_many([key for key, _on in to_fetch]):
            done += 1
            result.fetched += 1
            if raw is not None:
                rec = _parse(key, raw)
                if rec is not None:
                    take(key, rec, shelves_of[key])
                    if etags is not None and \
                            (text := _pinnable(etags.get(key), raw)) is not None:
                        fresh[key] = (etags[key], text)
            if progress and (done % 200 == 0 or done == total):
                progress(done, total)
        if progress and not to_fetch:
            progress(done, total)
        for repository_id, batch in batches.items():
            result.added += cache.bulk_add(repository_id, batch, keys_taken[repository_id])
        cache.bulk_delete(gone)
        result.removed = len(gone)
        session.commit()
    if etags is not None and refresh_snapshot and \
            not _worth_a_snapshot(result.fetched, len(record_keys)):
        if snapshot is None:
            snapshot = read_snapshot(storage) if record_keys else {}
        # Stale: more than a tenth of the records are missing or rewritten since.
        uncovered = [key for key in record_keys
                     if key not in fresh and (snapshot.get(key) or ("",))[0] != etags.get(key)]
        if uncovered and len(uncovered) * 10 > len(record_keys):
            for key, raw in storage.read_many(uncovered):
                result.fetched += 1
                text = None if raw is None else _pinnable(etags.get(key), raw)
                if text is not None and _parse(key, raw) is not None:
                    fresh[key] = (etags[key], text)
    if etags is not None and result.fetched and \
            _worth_a_snapshot(result.fetched, len(record_keys)):
        # Only texts read from storage, never rebuilt from database rows: a row can lag
        # behind a record another instance rewrote, and pinning it to the new etag would
        # make the snapshot lie. Unmatched entries of the old snapshot are dropped.
        entries = {key: entry for key, entry in (snapshot or {}).items()
                   if key in record_keys and entry[0] == etags.get(key)}
        entries.update(fresh)
        result.snapshot_written = write_snapshot(storage, entries)
    if debris:
        result.debris = clear_debris(storage, by_prefix, record_keys, dists)
    result.seconds = time.monotonic() - started
    return result
