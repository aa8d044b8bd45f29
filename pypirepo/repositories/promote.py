"""Stage and promote: a release copied from one repository into a hosted one.

Every file of the release is copied with its .metadata inside the store (a server-side
copy on S3, GCS and Azure, a hard link on local disk; never through this process), and a
record of its own is written for it: the original upload time and uploader, and who
promoted it from where and when. Then one transaction adds every row: a reader sees the
whole release in the target or none of it. A file already there with the same bytes is
fine; other bytes under the name are a 409, found before anything is copied.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from .. import names, records
from ..errors import Refused
from ..records import format_time, utcnow
from .base import Repository, Work

log = logging.getLogger(__name__)


def promote(work: Work, source: Repository, name: str, version: str, target: Repository,
            move: bool = False) -> dict:
    holder, rows = source.release_files(work, name, version)
    dest = target.accept(work, name)
    if dest is holder:
        raise Refused(400, f"{name} {version} is already in repository {dest.name!r}.")
    cache = work.metadata
    when = utcnow()
    wanted, present = [], []
    for row in rows:
        claim = cache.claimant(dest.claimed_in, row.filename, names.filename_key(row.filename))
        if claim is None:
            wanted.append(row)
        elif claim.sha256 == row.sha256 and claim.project == name:
            present.append(row.filename)
        else:
            raise Refused(409, f"File already exists in repository {dest.name!r} "
                               f"({row.filename!r}, with sha256 hash {claim.sha256!r}); "
                               "nothing was promoted.")
    fresh = []
    for row in wanted:
        record = holder.record_of(row, name)
        record.origin = "private"  # held by a hosted repository now, whatever it was
        record.provenance = {"promoted_from": holder.name, "promoted_by": work.user,
                             "promoted_at": format_time(when)}
        fresh.append(record)
    written: list[str] = []
    try:
        _copy(holder, dest, name, wanted, fresh, written)
        project_id = None
        for record in fresh:
            project_id, taken = cache.add_file(dest.id, record, dest.claimed_in)
            if taken is not None:
                raise Refused(409, f"File already exists in repository {dest.name!r} "
                                   f"({record.filename!r}): it was uploaded there just now; "
                                   "nothing was promoted.")
        if project_id is not None:
            cache.bump_serial(dest.id, project_id)
        for filename in [r.filename for r in fresh] + present:
            cache.record_event(dest.name, "promote", work.user, name, rows[0].version,
                               filename, f"from {holder.name}")
        if not move:
            for row in rows:
                cache.record_event(holder.name, "promote", work.user, name, row.version,
                                   row.filename, f"to {dest.name}")
        work.session.commit()
    except BaseException:
        work.session.rollback()
        dest._forget(written)
        raise
    if move:
        holder.delete_rows(work, holder.version_files(work, name, version), name,
                           event="promote", detail=f"moved to {dest.name}")
    log.info("%s %s: %d file(s) promoted from %s to %s by %s%s", name, version, len(fresh),
             holder.name, dest.name, work.user, " (moved)" if move else "")
    return {"from": holder.name, "to": dest.name, "moved": move,
            "files": sorted(r.filename for r in rows),
            "copied": sorted(r.filename for r in fresh)}


def _copy(holder, dest, name: str, rows, fresh, written: list[str]) -> None:
    """The objects: distributions and sidecars copied inside the store, then the records
    (written, not copied: they say where the file came from). Keys are added to written
    as their objects are in, so that a failure removes exactly what this made."""
    pairs = []
    for row in rows:
        src, dst = holder.key(name, row.filename), dest.key(name, row.filename)
        pairs.append((src, dst))
        if row.metadata_sha256:
            pairs.append((src + records.METADATA_SUFFIX, dst + records.METADATA_SUFFIX))
    storage = dest.storage
    try:
        storage.copy_many(pairs)
    finally:
        # Whatever landed is ours to remove on failure (a partial copy_many says nothing
        # of which ones did: the keys did not exist before, so removing all is right).
        written += [dst for _src, dst in pairs]
    keyed = [(dest.key(name, r.filename) + records.RECORD_SUFFIX, r.to_json()) for r in fresh]
    workers = max(1, min(storage.parallelism, len(keyed)))
    with ThreadPoolExecutor(workers, thread_name_prefix="promote") as pool:
        for key, _info in zip([k for k, _ in keyed],
                              pool.map(lambda item: storage.put_bytes(*item), keyed)):
            written.append(key)
