"""A proxy repository: an upstream index, in one of three modes.

- none: only what was cached while it was on (the upstream is never asked).
- redirect: a project is answered with a 302 to the upstream's page, a file with a 302
  to the upstream's file.
- cache: the upstream's files are listed with our URLs; the first download of each is
  fetched, verified against the upstream's sha256, stored under the repository's prefix
  and from then on served locally.

Who may make us ask the upstream is the proxy's `cache_update`; read permission itself is
checked by the views before anything here runs, so an anonymous caller is asked to log
in instead of being sent upstream (a 401, never a redirect or a 404). Cached pages and
files are served when the upstream is down (stale, logged); a project never seen gives a
502 naming the upstream problem. `upstream_min_age` hides upstream files younger than
that. Private names never reach a proxy in a group whose hosted members hold them: the
group answers from those (pypirepo.repositories.group).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass

from .. import names, records
from ..errors import (
    FallbackDenied,
    LoopDetected,
    NotFound,
    RedirectUpstream,
    Refused,
    StoredMeanwhile,
    UpstreamFailed,
)
from ..interfaces import ObjectNotFound
from ..pages import Page, PageCache, file_entry, file_url
from ..records import format_time, parse_time, utcnow
from ..fallback.background import Lull, WaitSlots
from ..upstream.client import (
    VIA,
    UpstreamBusy,
    UpstreamClient,
    UpstreamError,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from ..fallback.config import UpstreamConfig
from ..fallback.fetcher import FileFetcher, FlightReader, StorePlace
from ..upstream.network import without_userinfo
from ..fallback.pages import FetchDenied, KeyedLocks, Listing, UpstreamPages
from ..fallback.stats import UpstreamCounter
from .base import READ, Metadata, Work, entries_page
from .stored import StoredRepository

log = logging.getLogger(__name__)

VERDICT_WAIT = 2.0  # seconds a first download waits for its file to be in and checked


@dataclass
class UpstreamStream:
    """A file arriving from the upstream, streamed to the client while it is stored."""

    reader: FlightReader | None  # None for a HEAD
    filename: str
    size: int | None
    sha256: str


class ProxyRepository(StoredRepository):
    kind = "proxy"

    def __init__(self, name: str, prefix: str, config: UpstreamConfig, storage, db):
        super().__init__(name, prefix, storage, db)
        self.config = config
        self.client: UpstreamClient | None = None
        self.pages: UpstreamPages | None = None
        self.fetcher: FileFetcher | None = None
        self.stats: UpstreamCounter | None = None  # how the upstream answered
        self._metadata_locks = KeyedLocks()
        # Our own pages: (name, base) -> the page, under a token of what it is built from.
        self._built = PageCache()
        # Who may make us ask the upstream: principals as an identity has them.
        self._may_fetch = frozenset(config.cache_update)
        # How many request threads may wait on an upstream at once: shared by every proxy
        # of the server (Repositories gives them one), so that private and cached pages
        # always have threads left.
        self.slots = WaitSlots()
        # (project, filename, upstream sha256) of stored files the upstream has changed
        # since: said once each.
        self._changed: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    @classmethod
    def from_spec(cls, spec, deps) -> ProxyRepository:
        config = UpstreamConfig.from_settings(spec.settings)
        return cls(spec.name, spec.prefix, config, deps.storage, deps.db)

    def start(self, slots: WaitSlots | None = None) -> None:
        """The upstream client, its page store and the file fetcher, built once the
        repository has its row (their writes name it)."""
        config = self.config
        if slots is not None:
            self.slots = slots
        if not config.enabled:
            return
        self.client = UpstreamClient.from_config(config)
        self.slots.answered_by(self.client)
        lull = Lull()
        self.stats = UpstreamCounter(self.db.engine, self.id)
        self.pages = UpstreamPages(self.client, self.db.engine, config, self.id, lull=lull,
                                   serials=self.db.serials, slots=self.slots,
                                   stats=self.stats)
        place = StorePlace(self.id, self.name, self.prefix, config.url, self._may_store)
        self.fetcher = FileFetcher(self.client, self.storage, self.db.session_factory,
                                   config.spool_dir, lull, config.max_file_size, place,
                                   self.stats)
        log.info("repository %s: %s of %s (CA certificates: %s; proxy: %s; credentials: %s)",
                 self.name, config.mode, config.url, config.trust.source,
                 config.proxies.describe(),
                 config.credentials.source if config.credentials else "none")

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.stats is not None:
            self.stats.close()

    def describe(self) -> dict:
        return {"mode": self.config.mode, "upstream": self.config.url or None}

    def health(self) -> dict:
        """The upstream's part of /_health."""
        if self.client is None:
            return {"state": "off"}
        return {"mode": self.config.mode, **self.client.state()}

    @staticmethod
    def is_own_request(via: str | None) -> bool:
        """Whether a request was sent by this process's own upstream client."""
        return bool(via) and VIA in via

    def _may_store(self, project: str, filename: str) -> bool:
        others = tuple(i for i in self.claimed_in if i != self.id)
        if not others:
            return True
        with self.db.session_factory() as session:
            from ..metadata import MetadataCache

            return MetadataCache(session).claimant(others, filename,
                                                   names.filename_key(filename)) is None

    def _failed(self, project: str, message: str, exc: UpstreamError) -> UpstreamFailed:
        """The 502 for a client; the reason is logged once per project and state."""
        self.client.health.report(project, exc, "answered 502")
        return UpstreamFailed(message)

    @staticmethod
    def _loop(name: str) -> LoopDetected:
        return LoopDetected(f"{name!r}: this request came from this server's own upstream "
                            "client, so the upstream index (or a redirect it sent) leads back "
                            "here; it is not fetched again")

    def may_fetch(self, identity) -> bool:
        """Whether the caller (None: anonymous) may make us ask the upstream; admins may."""
        if identity is None:
            return "everyone" in self._may_fetch
        return identity.admin or bool(self._may_fetch & identity.principals)

    # --- the cooldown ------------------------------------------------------------------------

    def _cutoff(self, name: str) -> dt.datetime | None:
        age = self.config.cooldown(name)
        return utcnow() - dt.timedelta(seconds=age) if age > 0 else None

    @staticmethod
    def _too_young(entry: dict, cutoff: dt.datetime | None) -> bool:
        if cutoff is None:
            return False
        stamp = entry.get("upload_time") or entry.get("first_seen")
        if not stamp:
            return True  # no clock to judge by: hidden until we have seen it long enough
        return parse_time(stamp) > cutoff

    # --- what is held here -------------------------------------------------------------------

    def holds(self, work: Work, name: str) -> bool | None:
        held = self.project_files(work, name)
        if held is not None and held.rows:
            return True
        return None if self.config.fetch_allowed(name) else False

    # --- project pages -----------------------------------------------------------------------

    def local_page(self, work: Work, name: str, base: str) -> tuple[bool, Page | None]:
        if not work.may(self, name, READ):
            return False, None
        if not self.config.fetch_allowed(name):
            return True, self.held_page(work, name, base)
        return False, None

    def project_page(self, work: Work, name: str, base: str, merging: bool = False
                     ) -> Page | None:
        """Upstream's files with our URLs (theirs in redirect mode, when merging), with
        the cached ones it no longer lists; None for "not here, not upstream". Raises
        RedirectUpstream, FallbackDenied, UpstreamFailed or LoopDetected."""
        work.require(self, name, READ)
        cfg = self.config
        if not cfg.fetch_allowed(name):
            return self.held_page(work, name, base)
        if cfg.mode == "redirect" and not merging:
            raise RedirectUpstream(self.client.project_url(name))
        if work.looped:
            raise self._loop(name)
        held = self.project_files(work, name)
        rows, serial = (held.rows, held.serial) if held is not None else ([], 0)
        # The upstream may take a while: the request's database connection goes back to
        # the pool meanwhile, or a burst of first requests would hold every one of them.
        work.release()
        # Redirect mode only lists upstream links for a group that merges; that needs no
        # right to fill the cache.
        may = cfg.mode == "redirect" or self.may_fetch(work.identity)
        try:
            listing = self.pages.get(name, may_fetch=may)
        except FetchDenied:
            if rows:
                return self._rows_page(name, base, serial, rows)
            raise FallbackDenied(
                f"{name!r} is not held here, and only {_who(cfg.cache_update)} may fetch it "
                "from the upstream index") from None
        except UpstreamUnavailable as exc:
            if rows:
                self.client.health.report(name, exc, f"serving the {len(rows)} file(s) held "
                                                     "here")
                return self._rows_page(name, base, serial, rows)
            if isinstance(exc, UpstreamBusy):
                raise
            raise self._failed(name, f"{name!r} is not held here and the upstream index is "
                                     f"unavailable: {exc}", exc) from None
        if not listing.found and not rows:
            return None
        cutoff = self._cutoff(name)
        bucket = int(utcnow().timestamp() // 60) if cutoff is not None else 0
        token = f"{cfg.mode}:{listing.token}:{serial}:{bucket}"
        return self._build(name, base, token, serial,
                           lambda: self._merged(name, base, listing, rows, cutoff))

    def _rows_page(self, name, base, serial, rows) -> Page:
        cutoff = self._cutoff(name)
        entries = [file_entry(base, name, r) for r in rows
                   if not self._too_young(_row_times(r), cutoff)]
        return entries_page(serial, name, entries)

    def _merged(self, name, base, listing: Listing, cached, cutoff) -> list[dict]:
        absolute = self.config.mode == "redirect"
        files: dict[str, dict] = {}
        if listing.found:
            for u in listing.files:
                if not self._too_young(u, cutoff):
                    files[u["filename"]] = upstream_entry(base, name, u, absolute)
        for row in cached:
            entry = files.get(row.filename)
            if entry is None:
                # Fetched before, since gone upstream: lockfiles still name it.
                if not self._too_young(_row_times(row), cutoff):
                    files[row.filename] = file_entry(base, name, row)
            elif absolute:  # the upstream's URL: the upstream's file, as it lists it
                entry.setdefault("size", row.size)
                entry.setdefault("upload-time", format_time(row.upload_time))
            else:
                files[row.filename] = self._as_stored(name, base, entry, row)
        return [files[k] for k in sorted(files)]

    def _as_stored(self, name, base, entry: dict, row) -> dict:
        """The upstream's entry for a file stored here, as it is stored: its URL serves
        our bytes, so the hash, size and sidecar hash on our page are ours. Only the
        yanked state is the upstream's to change."""
        if entry["hashes"]["sha256"] != row.sha256:
            key = (name, row.filename, entry["hashes"]["sha256"])
            if key not in self._changed:
                self._changed[key] = None
                while len(self._changed) > 10000:
                    self._changed.popitem(last=False)
                log.warning("the upstream index now lists %s with sha256 %s, but the file "
                            "stored here has sha256 %s: the stored file is served and listed "
                            "with its own hash", row.filename, key[2], row.sha256)
            yanked = entry["yanked"]
            entry = file_entry(base, name, row)
            entry["yanked"] = yanked
            return entry
        entry["size"] = row.size
        entry.setdefault("upload-time", format_time(row.upload_time))
        entry["core-metadata"] = {"sha256": row.metadata_sha256} if row.metadata_sha256 \
            else False
        return entry

    def _build(self, name, base, token, serial, entries) -> Page:
        page = self._built.get((name, base), token)
        if page is None:
            page = entries_page(serial, name, entries())
            self._built.put((name, base), page, token)
        return page

    # --- files ---------------------------------------------------------------------------------

    def file(self, work: Work, name: str, filename: str, head: bool = False):
        """A stored file, or the upstream's: a StoredFile, a Metadata or an UpstreamStream;
        raises NotFound, RedirectUpstream, FallbackDenied, UpstreamFailed or
        StoredMeanwhile."""
        work.require(self, name, READ)
        found = self.stored_file(work, name, filename)
        if found is not None:
            return found
        meta = filename.endswith(records.METADATA_SUFFIX)
        dist_name = filename[: -len(records.METADATA_SUFFIX)] if meta else filename
        held = self.project_files(work, name)
        rows = held.rows if held is not None else []
        answer = self._from_upstream(work, name, filename, dist_name, meta, rows, head)
        if answer is None:
            raise NotFound(filename)
        return answer

    def _from_upstream(self, work, name, filename, dist_name, meta, rows, head):
        cfg = self.config
        if not cfg.fetch_allowed(name) or not names.is_valid_project_name(name):
            return None
        work.release()  # as for pages: no connection held while the upstream is waited on
        if work.looped:
            raise self._loop(name)
        may = cfg.mode == "redirect" or self.may_fetch(work.identity)
        entry = self._entry(name, dist_name, may)
        if entry is None or self._too_young(entry, self._cutoff(name)):
            return None
        if cfg.mode == "redirect":
            # Without credentials a page's URL may carry: those are ours, not the client's.
            raise RedirectUpstream(without_userinfo(entry["url"])
                                   + (records.METADATA_SUFFIX if meta else ""))
        if meta:
            answer = self._metadata(name, dist_name, entry, may)
            if answer is not None and may and not any(r.filename == dist_name for r in rows):
                self._prefetch(name, entry)
            return answer
        if not may:
            raise FallbackDenied(f"{dist_name!r} is not cached here, and only "
                                 f"{_who(cfg.cache_update)} may fetch it from the upstream index")
        if head:
            return UpstreamStream(None, dist_name, entry.get("size"), entry["sha256"])
        if not self.slots.take():
            raise UpstreamBusy(self.slots.size)
        try:
            return self._stream(name, dist_name, entry)
        except BaseException:
            self.slots.give()
            raise

    def _stream(self, name: str, dist_name: str, entry: dict):
        """The file as its fetch goes (its reader takes over the caller's wait slot), or an
        exception; the slot is the caller's to give back then."""
        cfg = self.config
        try:
            flight, reader = self.fetcher.join(name, entry)
        except UpstreamError as exc:
            raise self._failed(name, f"{dist_name!r} could not be fetched: {exc}", exc) \
                from None
        if flight is None:
            raise StoredMeanwhile(dist_name)
        try:
            flight.wait_started(cfg.connect_timeout * (cfg.retries + 1) + cfg.read_timeout + 5)
            # Most files are in within moments: then the client gets a whole verified file
            # or a clear 502, instead of a body that breaks off. Bigger ones stream, when
            # their length is known: a body of unknown length could not be cut short
            # visibly, so it waits for the verdict (the fetch's limits bound that wait).
            verified = flight.wait_verdict(VERDICT_WAIT if flight.size is not None else None)
        except UpstreamNotFound:
            reader.close()
            self.slots.give()
            return None
        except UpstreamError as exc:
            reader.close()
            raise self._failed(name, f"{dist_name!r} could not be fetched: {exc}", exc) \
                from None
        if verified:
            self.slots.give()
        else:
            reader.hold(self.slots)
        return UpstreamStream(reader, dist_name, flight.size, entry["sha256"])

    def _entry(self, name: str, filename: str, may: bool) -> dict | None:
        """The upstream listing's entry for a file: any listing held will do, and only a
        file missing from it makes us ask for a fresh one."""
        try:
            listing = self.pages.get(name, may_fetch=may, accept_stale=True)
            entry = listing.by_name.get(filename)
            if entry is None and may and (listing.stale or self._aged(listing)):
                listing = self.pages.get(name, may_fetch=True)
                entry = listing.by_name.get(filename)
        except FetchDenied:
            raise FallbackDenied(f"{filename!r} is not held here, and only "
                                 f"{_who(self.config.cache_update)} may fetch it from the "
                                 "upstream index") from None
        except UpstreamBusy:
            raise
        except UpstreamUnavailable as exc:
            raise self._failed(name, f"{filename!r} is not held here and the upstream index "
                                     f"is unavailable: {exc}", exc) from None
        return entry

    def _aged(self, listing: Listing) -> bool:
        return (utcnow() - listing.fetched).total_seconds() >= self.config.ttl

    def _prefetch(self, name: str, entry: dict) -> None:
        """A client that asks for a wheel's .metadata is resolving, and downloads that
        wheel next unless it backtracks: start fetching it now, so the download finds it
        here instead of waiting another upstream round trip."""
        cfg = self.config
        size = entry.get("size")
        if not cfg.prefetch or size is None or size > cfg.prefetch_max_size:
            return
        if self.fetcher.prefetch(name, entry):
            log.debug("prefetching %s", entry["filename"])

    def _metadata(self, name: str, filename: str, entry: dict, may: bool) -> Metadata | None:
        """A wheel's sidecar before the wheel is here: only one whose hash the upstream
        advertises, and only as long as it matches that hash. Once the wheel is stored its
        own METADATA is served (stored_file(), from its row)."""
        advertised = entry.get("core_metadata")
        if not isinstance(advertised, str):
            return None
        key = self.key(name, filename) + records.METADATA_SUFFIX
        held = self._held_metadata(key, advertised)
        if held is not None:
            return held
        if not may:
            raise FallbackDenied(f"{filename}.metadata is not cached here, and only "
                                 f"{_who(self.config.cache_update)} may fetch it from the "
                                 "upstream index")
        if not self.slots.take():
            raise UpstreamBusy(self.slots.size)
        try:
            with self._metadata_locks.hold(key):
                held = self._held_metadata(key, advertised)
                if held is not None:
                    return held
                try:
                    data = self.fetcher.fetch_metadata(entry)
                except UpstreamNotFound:
                    return None
                except UpstreamError as exc:
                    raise self._failed(name, f"{filename}.metadata could not be fetched: "
                                             f"{exc}", exc) from None
                # Written to storage after the burst: the client waits for its bytes, not
                # for our disk; until then this process serves them from memory.
                self.fetcher.keep_sidecar(key, data)
        finally:
            self.slots.give()
        return Metadata(data)

    def _held_metadata(self, key: str, advertised: str) -> Metadata | None:
        data = self.fetcher.sidecar(key)
        if data is None:
            try:
                data = self.storage.read_bytes(key)
            except ObjectNotFound:
                return None
        if hashlib.sha256(data).hexdigest() != advertised:
            return None  # kept from before the upstream changed it: fetched again
        return Metadata(data)

    # --- uploads elsewhere ---------------------------------------------------------------------

    def new_name_check(self, merges):
        """What a hosted repository before this proxy in a group asks before a new
        project's first upload: a name the upstream has may only be created by an admin,
        or when the group merges it (merges(name)), or nobody else could ever claim a
        public name here. Raises Refused."""
        cfg = self.config

        def check(work: Work, project: str) -> None:
            if not (cfg.enabled and cfg.check_uploads and cfg.fetch_allowed(project)):
                return
            if merges(project) or (work.identity is not None and work.identity.admin):
                return
            try:
                listing = self.pages.get(project, may_fetch=True)
            except UpstreamUnavailable as exc:
                self.client.health.report(project, exc, "refused an upload of a new name "
                                                        "(503)")
                raise Refused(503, f"Cannot check whether {project!r} exists on the "
                                   f"upstream index, so it cannot be created yet: {exc}") \
                    from None
            if listing.found:
                raise Refused(
                    403,
                    f"{project!r} exists on the upstream index; a private project of that "
                    "name would shadow it for every user (dependency confusion). An admin "
                    "must create it, or it must be on the group's merge list "
                    "(pypi.upstream_allow).")

        return check


def upstream_entry(prefix: str, project: str, u: dict, absolute: bool = False) -> dict:
    """A simple-API file object for an upstream file: our URL, or theirs in redirect mode."""
    meta = u.get("core_metadata")
    entry = {
        "filename": u["filename"],
        "url": without_userinfo(u["url"]) if absolute
        else file_url(prefix, project, u["filename"]),
        "hashes": {"sha256": u["sha256"]},
        "requires-python": u.get("requires_python"),
        "yanked": u.get("yanked") or False,
        # A sidecar whose hash the upstream did not give is not advertised: the shared
        # template can only render a hash, and an empty one would fail every install.
        "core-metadata": {"sha256": meta} if isinstance(meta, str) else False,
    }
    if u.get("size") is not None:
        entry["size"] = u["size"]
    if u.get("upload_time"):
        entry["upload-time"] = u["upload_time"]
    return entry


def _row_times(row) -> dict:
    return {"upload_time": format_time(row.upload_time)}


def _who(words: list[str]) -> str:
    if "everyone" in words:
        return "everyone"
    return ", ".join(words) + " users" if words else "admins"
