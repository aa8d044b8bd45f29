"""Data sets for the benchmarks: real wheels and sdists, stored exactly as an upload stores them.

Every file goes through the app's own upload path in-process (`parse_form` then
`IndexService.upload`), so storage ends up with the distribution, its `.metadata` sidecar
and its `.json` record byte for byte as a twine upload would leave them, only without the
HTTP round trip. The database those uploads write is a throwaway: the benchmarks start
servers on the storage with an empty or a populated database of their own.

Generated sets are cached under benchmarks/.data/, keyed by their parameters and by a
digest of the code that decides what an upload stores, so reruns are fast and a change to
that code regenerates them instead of measuring stale data.

    python -m benchmarks.generate --projects 5000 --files 15000 --big 200
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / ".data"
TESTS = REPO / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import distfactory  # noqa: E402
from packaging.utils import canonicalize_name  # noqa: E402

BIG_PROJECT = "Bench-Big"
UPLOADER = "bench"
# Bump when plan() or the data sets' shapes change.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class Spec:
    """projects in all, files in all, of which big_files belong to one project."""

    projects: int = 5000
    files: int = 15000
    big_files: int = 200

    def __post_init__(self):
        if self.projects < 1 or self.big_files < 1:
            raise ValueError("need at least one project with one file")
        if self.files < self.big_files + (self.projects - 1):
            raise ValueError("every project needs at least one file")

    @property
    def name(self) -> str:
        return f"store-p{self.projects}-f{self.files}-b{self.big_files}"


@dataclass(frozen=True)
class Item:
    """One distribution to make and upload."""

    name: str  # as the uploader spells it
    version: str
    kind: str  # "wheel" | "sdist"
    payload: int = 0  # extra incompressible bytes inside a wheel

    @property
    def project(self) -> str:
        return canonicalize_name(self.name)

    @property
    def filename(self) -> str:
        if self.kind == "wheel":
            return distfactory.wheel_name(self.name, self.version)
        return distfactory.sdist_name(self.name, self.version)


def _files_of(name: str, count: int) -> Iterator[Item]:
    # A wheel and an sdist per version, as most projects publish.
    for j in range(count):
        yield Item(name, f"{j // 20}.{(j // 2) % 10}.0", "wheel" if j % 2 == 0 else "sdist")


def plan(spec: Spec) -> list[Item]:
    """The files of a data set: one big project, the rest spread evenly over the others."""
    items = list(_files_of(BIG_PROJECT, spec.big_files))
    others = spec.projects - 1
    if others:
        rest = spec.files - spec.big_files
        base, extra = divmod(rest, others)
        for i in range(others):
            # Mixed case and separators, so display names and normalization both show.
            items += _files_of(f"Bench.Proj_{i:05d}", base + (1 if i < extra else 0))
    return items


def fingerprint() -> str:
    """A digest of what the current code stores for an upload, to key cached data sets.

    One wheel and one sdist go through the upload service into a scratch storage; the
    objects it leaves (names and contents, less the upload time and the sdist's digests,
    which vary with tar timestamps) are hashed. Whatever changes in how pypirepo stores
    an upload changes this, and no cosmetic edit to its code does.
    """
    from pypirepo.storage.local import LocalStorage

    h = hashlib.sha256(f"v{GENERATOR_VERSION}".encode())
    h.update((TESTS / "distfactory.py").read_bytes())
    with tempfile.TemporaryDirectory(prefix="bench-fp-") as tmp:
        storage = LocalStorage(Path(tmp) / "storage")
        populate(local_storage(storage.root), [Item("Finger.Print", "1.0", "wheel"),
                           Item("Finger.Print", "1.0", "sdist")])
        for obj in sorted(storage.list(""), key=lambda o: o.key):
            raw = storage.read_bytes(obj.key)
            if obj.key.endswith(".tar.gz"):
                raw = b""
            elif obj.key.endswith(".json"):
                data = json.loads(raw)
                data.pop("upload_time", None)
                if obj.key.endswith(".tar.gz.json"):
                    for k in ("sha256", "md5", "blake2_256", "size"):
                        data.pop(k, None)
                raw = json.dumps(data, sort_keys=True).encode()
            h.update(obj.key.encode() + b"\0" + raw + b"\0")
    return h.hexdigest()[:12]


# --- uploading through the app's own service -----------------------------------------------


class Uploader:
    """pypirepo's own WSGI app, in-process, posting each file to /legacy/ as twine would.

    Going through the real upload view (multipart parsing, auth, the index service) keeps
    the stored bytes exactly what an upload leaves, whatever the code does this week. The
    app's database is a throwaway; storage is whatever `storage_settings` name.
    """

    def __init__(self, storage_settings: dict, workdir: Path):
        from webtest import TestApp

        from pypirepo import main

        secret = os.urandom(12).hex()
        settings = {
            "sqlalchemy.url": f"sqlite:///{workdir}/throwaway.sqlite",
            "pypirepo.auto_migrate": "true",
            "pypirepo.reindex_on_start": "false",
            "pypi.default_read": "everyone",
            "pypi.default_write": "authenticated",
            "pypi.fallback": "none",
            "auth.bootstrap_user": UPLOADER,
            "auth.bootstrap_password": secret,
            **storage_settings,
        }
        self.app = TestApp(main({}, **settings))
        self.app.authorization = ("Basic", (UPLOADER, secret))

    def upload(self, path: Path, name: str, version: str) -> str:
        res = self.app.post("/legacy/", params=distfactory.upload_fields(path, name, version),
                            upload_files=[("content", path.name, path.read_bytes())],
                            expect_errors=True)
        if res.status_int != 200:
            raise RuntimeError(f"upload of {path.name} answered {res.status}: {res.text}")
        return res.text


def local_storage(root) -> dict:
    return {"pypirepo.storage": "local", "storage.dir": str(root)}


def make_dist(directory: Path, item: Item) -> Path:
    if item.kind == "wheel":
        return distfactory.make_wheel(directory, item.name, item.version,
                                      requires_python=">=3.8", payload_size=item.payload)
    return distfactory.make_sdist(directory, item.name, item.version, requires_python=">=3.8")


def populate(storage_settings: dict, items: Iterable[Item], progress=None) -> int:
    """Upload each item into the storage that storage_settings configure (any backend)."""
    done = 0
    with tempfile.TemporaryDirectory(prefix="bench-gen-") as tmp:
        uploader = Uploader(storage_settings, Path(tmp))
        for item in items:
            path = make_dist(Path(tmp) / "dists", item)
            uploader.upload(path, item.name, item.version)
            path.unlink()
            done += 1
            if progress:
                progress(done)
    return done


def _populate_local(root: str, items: list[Item]) -> int:
    return populate(local_storage(root), items)


# --- cached data sets ------------------------------------------------------------------------


_FINGERPRINT: list[str] = []


def _fingerprint() -> str:
    if not _FINGERPRINT:
        _FINGERPRINT.append(fingerprint())
    return _FINGERPRINT[0]


def _cached(name: str, build, meta: dict) -> Path:
    """DATA/<name>-<code digest>/, built once by build(partial_dir); stale siblings pruned."""
    DATA.mkdir(parents=True, exist_ok=True)
    final = DATA / f"{name}-{_fingerprint()}"
    if (final / "done.json").exists():
        return final
    for stale in DATA.glob(f"{name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    partial = DATA / f".partial-{final.name}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    started = time.monotonic()
    build(partial)
    meta = dict(meta, seconds=round(time.monotonic() - started, 1))
    (partial / "done.json").write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(partial, final)
    return final


def store_dataset(spec: Spec = Spec(), workers: int | None = None, log=print) -> Path:
    """A storage root holding spec's files; returns the folder with storage/ inside."""
    items = plan(spec)

    def build(folder: Path):
        from concurrent.futures import ProcessPoolExecutor

        root = folder / "storage"
        root.mkdir()
        n = workers or min(2, os.cpu_count() or 1)
        log(f"generating {len(items)} files in {spec.projects} projects with {n} workers...")
        # Split by project so that no two workers touch one project's folder.
        shares: list[list[Item]] = [[] for _ in range(n)]
        for item in items:
            shares[zlib.crc32(item.project.encode()) % n].append(item)
        with ProcessPoolExecutor(n) as pool:
            total = sum(pool.map(_populate_local, [str(root)] * n, shares))
        assert total == len(items), (total, len(items))

    return _cached(spec.name, build, dict(asdict(spec), files_made=len(items)))


def download_dataset(size: int = 100 * 1024 * 1024, log=print) -> tuple[Path, Item]:
    """A storage root holding one wheel of about `size` bytes."""
    item = Item("Bench-Download", "1.0", "wheel", payload=size)

    def build(folder: Path):
        log(f"generating a {size >> 20} MiB wheel...")
        populate(local_storage(folder / "storage"), [item])

    return _cached(f"download-{size}", build, {"size": size}), item


def upload_dataset(count: int = 200, log=print) -> Path:
    """A folder of `count` distributions to publish (10 projects of count/10 files)."""
    items = []
    for p in range(10):
        items += _files_of(f"bench-upload-{p:02d}", count // 10 + (1 if p < count % 10 else 0))

    def build(folder: Path):
        log(f"generating {count} distributions to upload...")
        for item in items:
            make_dist(folder / "dists", item)

    return _cached(f"upload-{count}", build, {"count": count}) / "dists"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=Spec.projects)
    parser.add_argument("--files", type=int, default=Spec.files)
    parser.add_argument("--big", type=int, default=Spec.big_files)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    started = time.monotonic()
    path = store_dataset(Spec(args.projects, args.files, args.big), args.workers)
    print(f"{path} ({time.monotonic() - started:.1f}s)")


if __name__ == "__main__":
    main()
