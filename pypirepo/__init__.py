"""pypirepo: a private Python package index and caching proxy."""

from __future__ import annotations

import gc
import logging

from jinja2 import Environment, FileSystemLoader, select_autoescape
from pyramid.authorization import Everyone
from pyramid.config import Configurator

from .settings import AppConfig, Settings, one_line_exit

log = logging.getLogger(__name__)


def make_renderer():
    from .paths import resource_dir

    env = Environment(
        loader=FileSystemLoader(str(resource_dir("templates"))),
        autoescape=select_autoescape(["html"]),
        trim_blocks=False,
    )

    def render(name: str, data: dict) -> str:
        return env.get_template(name).render(**data)

    return render


def main(global_config, **ini):
    """The WSGI app factory `pserve` calls."""
    # Building the app makes several hundred thousand long-lived objects (SQLAlchemy,
    # Pyramid, the cache's first reads) that the cyclic collector would walk over and
    # over. It is off while they are made; then they are frozen out of its way, so later
    # collections on the request path skip them too. Only here: the console scripts
    # import this package and keep a normal collector.
    gc.disable()
    try:
        return _build_app(ini)
    finally:
        gc.freeze()
        gc.enable()


def _build_app(ini):
    """Settings, storage, database, services, routes: reads like a table of contents."""
    from .access import ConfigAccess, bootstrap_password, login_summary
    from .db.serials import Serials
    from .fallback import FallbackService
    from .pages import PageCache
    from .db import migrate
    from .db.engine import make_session_factory
    from .storage import storage_from_settings
    from .upstream.config import UpstreamConfig

    # 1. Settings: the ini overlaid by PYPIREPO_* variables, validated before anything runs.
    settings = Settings(ini)
    with one_line_exit():
        app_config = AppConfig.from_settings(settings)
        storage = storage_from_settings(settings)
        password = bootstrap_password(app_config, settings)
        upstream_config = UpstreamConfig.from_settings(settings)
        # 2. The metadata cache: schema first (a database that cannot be used stops the
        #    start here, saying why), then reconciled with storage (the truth).
        engine = migrate.ready_engine(app_config.database_url, app_config.auto_migrate)
    session_factory = make_session_factory(engine)
    serials = Serials(engine)
    _reconcile_on_start(app_config.reindex_on_start, storage, session_factory, serials)

    # 3. Pyramid: one Configurator, the shared services on the registry, each subsystem
    #    including only its own things.
    config = Configurator(settings=dict(settings))
    registry = config.registry
    registry.app_config = app_config
    registry.settings_obj = settings
    registry.storage = storage
    registry.engine = engine
    registry.session_factory = session_factory
    registry.serials = serials
    registry.access = ConfigAccess(app_config, password)
    # Said once the server is listening (server.py), after the URL; a warning now when
    # nobody can log in, so a closed index that answers 401 to all says why.
    registry.login_summary, nobody = login_summary(app_config, settings, password)
    if nobody:
        log.warning(nobody)
    registry.public_read = Everyone in [p for p in registry.access.read]
    registry.page_cache = PageCache()
    registry.render = make_renderer()
    # The upstream fallback and its one HTTP client; uploads ask it about new names.
    registry.fallback = FallbackService.build(upstream_config, storage, session_factory,
                                              registry.access, serials)

    config.include(".security")
    config.include(".routes")
    config.include(".views")
    from .views.simple import CachedPages
    from .wsgi import ReadableURLs

    # Cached index pages for anonymous readers skip the router (the busiest requests;
    # their URLs are plain ASCII without a query, checked there); a URL that cannot be
    # decoded is refused before the router.
    return CachedPages(ReadableURLs(config.make_wsgi_app()), registry)


def _reconcile_on_start(mode: str, storage, session_factory, serials) -> None:
    """Bring the cache in line with storage.

    An empty database is filled before the first request, so the index is never served
    incomplete. A populated one was right when last written (and instances that share it
    keep it right), so it serves at once while the walk over storage, which only finds
    what changed behind our back, runs in the background. What writes interrupted by a
    crash left in storage is cleared in the background either way (and looked at once
    more later when some of it was too recent to be sure: a server restarted right after
    its crash finds its own debris seconds old).
    """
    import threading

    from .metadata.rebuild import DEBRIS_AGE, clear_debris, reconcile

    def run(refresh_snapshot=False, debris=False):
        result = reconcile(storage, session_factory, refresh_snapshot=refresh_snapshot,
                           debris=debris)
        log.info("cache reconciled with storage: +%d -%d =%d in %.2fs", result.added,
                 result.removed, result.unchanged, result.seconds)
        return result.debris

    def clear(found=None):
        found = found or clear_debris(storage)
        if found.recent:
            timer = threading.Timer(DEBRIS_AGE, _logged(lambda: clear_debris(storage)))
            timer.daemon = True
            timer.start()

    if mode == "off":
        return
    if mode == "background" or (mode == "auto" and serials.index() > 0):
        # Off the request path there is time to keep the records snapshot fresh too.
        work = lambda: clear(run(refresh_snapshot=True, debris=True))  # noqa: E731
    else:
        run()
        work = clear
    threading.Thread(target=_logged(work), name="pypirepo-reconcile", daemon=True).start()


def _logged(fn):
    def wrapper():
        try:
            fn()
        except Exception:  # noqa: BLE001 - a background thread has nobody else to tell
            log.exception("reconciling the cache with storage failed")

    return wrapper
