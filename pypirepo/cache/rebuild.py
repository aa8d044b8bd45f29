"""Rebuild the metadata cache from storage: reconcile, never wipe.

Storage is the truth. A file is present when its record (the .json sidecar) is; the
distribution itself is never opened. Rows whose record is gone are dropped, records the
database lacks are added. Several processes may run this at once: inserts skip rows that
another process added first.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..interfaces import Storage
from ..records import METADATA_SUFFIX, PREFIX, RECORD_SUFFIX, FileRecord
from . import MetadataCache

log = logging.getLogger(__name__)
BATCH = 1000


@dataclass
class ReconcileResult:
    added: int = 0
    removed: int = 0
    unchanged: int = 0
    orphans: int = 0  # distributions without a record (an interrupted upload)
    seconds: float = 0.0


def scan(storage: Storage) -> tuple[dict[str, str], set[str]]:
    """(filename -> record key, set of distribution keys) under packages/."""
    records, dists = {}, set()
    for key in storage.list_keys(PREFIX):
        if key.endswith(RECORD_SUFFIX):
            records[key.rsplit("/", 1)[1][: -len(RECORD_SUFFIX)]] = key
        elif not key.endswith(METADATA_SUFFIX):
            dists.add(key)
    return records, dists


def reconcile(storage: Storage, session_factory, progress=None) -> ReconcileResult:
    started = time.monotonic()
    result = ReconcileResult()
    records, dists = scan(storage)
    record_keys = set(records.values())
    result.orphans = sum(1 for d in dists if d + RECORD_SUFFIX not in record_keys)
    with session_factory() as session:
        cache = MetadataCache(session)
        known = cache.all_filenames()
        gone = [fid for fn, (fid, _p) in known.items() if fn not in records]
        wanted = [key for fn, key in records.items() if fn not in known]
        result.unchanged = len(known) - len(gone)
        total = len(wanted)
        if progress:
            progress(0, total)
        batch: list[FileRecord] = []
        done = 0
        for key, raw in storage.read_many(wanted):
            done += 1
            if raw is not None:
                try:
                    batch.append(FileRecord.from_json(raw))
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("skipping unreadable record %s: %s", key, exc)
            if len(batch) >= BATCH:
                result.added += cache.bulk_add(batch)
                batch = []
            if progress and (done % 200 == 0 or done == total):
                progress(done, total)
        result.added += cache.bulk_add(batch)
        cache.bulk_delete(gone)
        result.removed = len(gone)
        session.commit()
    result.seconds = time.monotonic() - started
    if result.orphans:
        log.warning("%d distribution(s) in storage have no record (interrupted uploads?)",
                    result.orphans)
    return result
