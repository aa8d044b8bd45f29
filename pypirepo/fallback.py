"""The fallback policy: what a project we don't hold privately looks like, per mode.

- none: only what we hold.
- redirect: a project without private files is answered with a 302 to the upstream's
  page, its files with a 302 to the upstream's file.
- cache: the upstream's files are listed with our URLs; the first download of each is
  fetched, verified against the upstream's sha256, stored (origin "upstream") and from
  then on served locally.

Private wins, so a public project can never stand in for a private one (dependency
confusion): a project with any private file lists only its private files and never
consults the upstream, unless its name is on `pypi.upstream_allow`
(`pypi.always_show_upstream = true` allows every name, as in pypicloud). A new private
name that exists upstream needs an admin or the allow-list.

Who may make us ask the upstream is `pypi.cache_update`; read permission itself is
checked by the views before anything here runs, so an anonymous caller is asked to log
in instead of being sent upstream (a 401, never a redirect or a 404). Cached pages and files are served when
the upstream is down (stale, logged); a project never seen gives a 502 naming the
upstream problem. `pypi.upstream_min_age` hides upstream files younger than that.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass

from . import names, records
from .access import principal
from .cache.upstream import UpstreamCache
from .index import API_VERSION, Page, PageCache, file_entry, file_url, make_page
from .interfaces import ObjectNotFound
from .records import format_time, parse_time, utcnow
from .upload import UploadError
from .upstream.background import DEFAULT_MAX_WAITING, Lull, WaitSlots, max_waiting_for
from .upstream.client import (
    VIA,
    UpstreamBusy,
    UpstreamClient,
    UpstreamError,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from .upstream.config import UpstreamConfig
from .upstream.fetcher import FileFetcher, FlightReader
from .upstream.network import without_userinfo
from .upstream.pages import FetchDenied, KeyedLocks, Listing, UpstreamPages

log = logging.getLogger(__name__)

VERDICT_WAIT = 2.0  # seconds a first download waits for its file to be in and checked


# --- what the views turn into responses (pypirepo.views.upstream) ----------------------------

class FallbackDenied(Exception):
    """The upstream would have to be asked, and this caller may not make us."""


class UpstreamFailed(Exception):
    """The upstream could not be asked and nothing is held: a 502 naming the problem."""


class LoopDetected(UpstreamFailed):
    """The request was made by this server's own upstream client: the upstream (or a
    redirect of its) leads back here. Answered at once (508), never fetched again."""


class RedirectUpstream(Exception):
    def __init__(self, location: str):
        super().__init__(location)
        self.location = location


class StoredMeanwhile(Exception):
    """The file was stored by a fetch that finished just now: serve it as a local file."""


@dataclass
class UpstreamStream:
    reader: FlightReader | None  # None for a HEAD
    filename: str
    size: int | None
    sha256: str


@dataclass
class UpstreamMetadata:
    body: bytes


# --- the service -------------------------------------------------------------------------------

class FallbackService:
    def __init__(self, config: UpstreamConfig, client: UpstreamClient | None,
                 pages: UpstreamPages | None, fetcher: FileFetcher | None, access, storage,
                 session_factory):
        self.config = config
        self.client = client
        self.pages = pages
        self.fetcher = fetcher
        self.access = access
        self.storage = storage
        self.session_factory = session_factory
        self._metadata_locks = KeyedLocks()
        # (name, prefix) -> the page, under a token of everything it is built from.
        self._built = PageCache()
        self._may_fetch = self._principals(config.cache_update)
        self.slots = pages.slots if pages is not None else WaitSlots()
        # (project, filename, upstream sha256) of stored files the upstream has changed
        # since: said once each.
        self._changed: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    @classmethod
    def build(cls, config: UpstreamConfig, storage, session_factory, access,
              serials=None) -> FallbackService:
        """The service with its upstream client, built once at start-up."""
        if not config.enabled:
            return cls(config, None, None, None, access, storage, session_factory)
        client = UpstreamClient.from_config(config)
        lull = Lull()
        pages = UpstreamPages(client, session_factory.kw["bind"], config, lull=lull,
                              serials=serials, slots=WaitSlots(
                                  config.max_waiting or DEFAULT_MAX_WAITING,
                                  lambda: client.last_answer))
        fetcher = FileFetcher(client, storage, session_factory, config.spool_dir, lull,
                              config.max_file_size)
        log.info("fallback %s to %s (CA certificates: %s; proxy: %s; credentials: %s)",
                 config.mode, config.url, config.trust.source, config.proxies.describe(),
                 config.credentials.source if config.credentials else "none")
        return cls(config, client, pages, fetcher, access, storage, session_factory)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def server_threads(self, threads: int) -> None:
        """The server says how many request threads it has (before the first request):
        the wait slots are sized from them unless pypi.upstream_max_waiting says."""
        if self.config.max_waiting is None:
            self.slots.configure(max_waiting_for(threads))

    def health(self) -> dict:
        """The upstream's part of /_health."""
        if self.client is None:
            return {"state": "off"}
        return {"mode": self.config.mode, **self.client.state()}

    @staticmethod
    def is_own_request(via: str | None) -> bool:
        """Whether a request was sent by this process's own upstream client."""
        return bool(via) and VIA in via

    def _failed(self, project: str, message: str, exc: UpstreamError) -> UpstreamFailed:
        """The 502 for a client; the reason is logged once per project and state."""
        self.client.health.report(project, exc, "answered 502")
        return UpstreamFailed(message)

    @staticmethod
    def _loop(name: str) -> LoopDetected:
        return LoopDetected(f"{name!r}: this request came from this server's own upstream "
                            "client, so the upstream index (or a redirect it sent) leads back "
                            "here; it is not fetched again")

    # --- who may make us fetch -------------------------------------------------------------

    @staticmethod
    def _principals(words: list[str]) -> set[str]:
        return {w if w.startswith("group:") else principal(w) for w in words} | {"group:admin"}

    def may_fetch(self, user: str | None) -> bool:
        return bool(self._may_fetch.intersection(self.access.principals(user)))

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

    # --- project pages -----------------------------------------------------------------------

    def local_page(self, index, name: str, prefix: str) -> tuple[bool, Page | None]:
        """(True, our page or None) when the fallback has nothing to add to what we hold:
        it is off or not for this name, or the name is held here, not merged, and no file
        of the upstream's is cached under it. (False, None) when project_page() must
        decide, which may ask the upstream. Never asks the upstream itself."""
        cfg = self.config
        if not cfg.fetch_allowed(name):
            return True, index.project_page(name, prefix)
        held = index.project_files(name)
        if held is not None and held.private and not held.upstream \
                and not cfg.may_merge(name):
            return True, index.project_page(name, prefix)
        return False, None

    def project_page(self, index, name: str, prefix: str, user: str | None,
                     looped: bool = False) -> Page | None:
        """The page to serve for a project: ours (index.project_page), upstream's files
        with our URLs, or both merged.

        Returns None for "not here, not upstream"; raises RedirectUpstream,
        FallbackDenied or UpstreamFailed.
        """
        cfg = self.config
        decided, page = self.local_page(index, name, prefix)
        if decided:
            return page
        held = index.project_files(name)
        if held is not None:
            rows, private, cached, serial = held.rows, held.private, held.upstream, held.serial
        else:
            rows, private, cached, serial = [], [], [], 0
        if private and not cfg.may_merge(name):
            # Files fetched before the name became private are hidden, not merged.
            return self._build(name, prefix, f"private:{serial}", serial,
                               lambda: [file_entry(prefix, name, r) for r in private])
        if cfg.mode == "redirect" and not private:
            raise RedirectUpstream(self.client.project_url(name))
        if looped:
            raise self._loop(name)
        # The upstream may take a while: the request's database connection goes back to
        # the pool meanwhile, or a burst of first requests would hold every one of them.
        index.close()
        # Redirect mode only lists upstream links next to an allowed private name; that
        # needs no right to fill the cache.
        may = cfg.mode == "redirect" or self.may_fetch(user)
        try:
            listing = self.pages.get(name, may_fetch=may)
        except FetchDenied:
            if rows:
                return self._rows_page(name, prefix, serial, rows)
            raise FallbackDenied(
                f"{name!r} is not held here, and only {_who(cfg.cache_update)} may fetch it "
                "from the upstream index") from None
        except UpstreamUnavailable as exc:
            if rows:
                self.client.health.report(name, exc, f"serving the {len(rows)} file(s) held "
                                                     "here")
                return self._rows_page(name, prefix, serial, rows)
            if isinstance(exc, UpstreamBusy):
                raise
            raise self._failed(name, f"{name!r} is not held here and the upstream index is "
                                     f"unavailable: {exc}", exc) from None
        if not listing.found and not rows:
            return None
        cutoff = self._cutoff(name)
        bucket = int(utcnow().timestamp() // 60) if cutoff is not None else 0
        token = f"{cfg.mode}:{listing.token}:{serial}:{bucket}"
        return self._build(name, prefix, token, serial,
                           lambda: self._merged(name, prefix, listing, cached, private, cutoff))

    def _rows_page(self, name, prefix, serial, rows) -> Page:
        cutoff = self._cutoff(name)
        entries = [file_entry(prefix, name, r) for r in rows
                   if r.origin != "upstream" or not self._too_young(_row_times(r), cutoff)]
        return self._page(serial, name, entries)

    def _merged(self, name, prefix, listing: Listing, cached, private, cutoff) -> list[dict]:
        absolute = self.config.mode == "redirect"
        files: dict[str, dict] = {}
        if listing.found:
            for u in listing.files:
                if not self._too_young(u, cutoff):
                    files[u["filename"]] = upstream_entry(prefix, name, u, absolute)
        for row in cached:
            entry = files.get(row.filename)
            if entry is None:
                # Fetched before, since gone upstream: lockfiles still name it.
                if not self._too_young(_row_times(row), cutoff):
                    files[row.filename] = file_entry(prefix, name, row)
            elif absolute:  # the upstream's URL: the upstream's file, as it lists it
                entry.setdefault("size", row.size)
                entry.setdefault("upload-time", format_time(row.upload_time))
            else:
                files[row.filename] = self._as_stored(name, prefix, entry, row)
        for row in private:
            files[row.filename] = file_entry(prefix, name, row)
        return [files[k] for k in sorted(files)]

    def _as_stored(self, name, prefix, entry: dict, row) -> dict:
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
            entry = file_entry(prefix, name, row)
            entry["yanked"] = yanked
            return entry
        entry["size"] = row.size
        entry.setdefault("upload-time", format_time(row.upload_time))
        entry["core-metadata"] = {"sha256": row.metadata_sha256} if row.metadata_sha256 \
            else False
        return entry

    def _build(self, name, prefix, token, serial, entries) -> Page:
        page = self._built.get((name, prefix), token)
        if page is None:
            page = self._page(serial, name, entries())
            self._built.put((name, prefix), page, token)
        return page

    @staticmethod
    def _page(serial: int, name: str, entries: list[dict]) -> Page:
        versions = set()
        for e in entries:
            try:
                versions.add(names.parse_filename(e["filename"]).version)
            except names.InvalidFilename:
                pass
        return make_page(serial, {
            "meta": {"api-version": API_VERSION, "_last-serial": serial},
            "name": name,
            "files": entries,
            "versions": sorted(versions, key=names.version_key),
        }, "detail")

    # --- files ---------------------------------------------------------------------------------

    def download(self, index, name: str, filename: str, user: str | None,
                 head: bool = False, looped: bool = False):
        """A file (or .metadata) we hold no row for. None means 404.

        Returns UpstreamStream or UpstreamMetadata; raises RedirectUpstream,
        FallbackDenied, UpstreamFailed or StoredMeanwhile.
        """
        cfg = self.config
        if not cfg.fetch_allowed(name) or not names.is_valid_project_name(name):
            return None
        meta = filename.endswith(records.METADATA_SUFFIX)
        dist_name = filename[: -len(records.METADATA_SUFFIX)] if meta else filename
        held = index.project_files(name)  # the download view has just asked: no query
        rows = held.rows if held is not None else []
        index.close()  # as for pages: no connection held while the upstream is waited on
        if any(r.origin != "upstream" for r in rows) and not cfg.may_merge(name):
            return None
        if looped:
            raise self._loop(name)
        may = cfg.mode == "redirect" or self.may_fetch(user)
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

    def _metadata(self, name: str, filename: str, entry: dict, may: bool) -> UpstreamMetadata:
        """A wheel's sidecar before the wheel is here: only one whose hash the upstream
        advertises, and only as long as it matches that hash. Once the wheel is stored its
        own METADATA is served (the files view, from its row)."""
        advertised = entry.get("core_metadata")
        if not isinstance(advertised, str):
            return None
        key = records.metadata_key(name, filename)
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
        return UpstreamMetadata(data)

    def _held_metadata(self, key: str, advertised: str) -> UpstreamMetadata | None:
        data = self.fetcher.sidecar(key)
        if data is None:
            try:
                data = self.storage.read_bytes(key)
            except ObjectNotFound:
                return None
        if hashlib.sha256(data).hexdigest() != advertised:
            return None  # kept from before the upstream changed it: fetched again
        return UpstreamMetadata(data)

    # --- uploads -------------------------------------------------------------------------------

    def check_new_project(self, session, project: str, user: str | None) -> None:
        """Refuse a new private name that exists upstream, unless an admin or the
        allow-list says so: nobody else may claim a public name here. Raises UploadError."""
        cfg = self.config
        if not (cfg.enabled and cfg.check_uploads and cfg.fetch_allowed(project)):
            return
        if cfg.may_merge(project) or "group:admin" in self.access.principals(user):
            return
        if UpstreamCache(session).has_private_files(project):
            return
        try:
            listing = self.pages.get(project, may_fetch=True)
        except UpstreamUnavailable as exc:
            self.client.health.report(project, exc, "refused an upload of a new name (503)")
            raise UploadError(503, f"Cannot check whether {project!r} exists on the upstream "
                                   f"index, so it cannot be created yet: {exc}") from None
        if listing.found:
            raise UploadError(
                403,
                f"{project!r} exists on the upstream index; a private project of that name "
                "would shadow it for every user (dependency confusion). An admin must create "
                "it, or it must be listed in pypi.upstream_allow.")


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
