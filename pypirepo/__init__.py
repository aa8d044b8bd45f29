"""pypirepo: a private Python package index and caching proxy."""

from __future__ import annotations

import gc
import logging

from pyramid.config import Configurator

from .settings import AppConfig, Settings, one_line_exit

log = logging.getLogger(__name__)


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


def close(app) -> None:
    """Release what main() opened (connections, open files, clients, threads) in a
    process that goes on without the app: tests and benchmarks build hundreds. The app
    must not be used afterwards. pserve has no need: the process ends."""
    from .interfaces import IDatabase, IRepositories, IStorage

    registry = app.registry
    for interface in (IRepositories, IStorage, IDatabase):
        service = registry.queryUtility(interface)
        if service is not None:
            service.close()


def _build_app(ini):
    """Settings, then each subsystem in the order they need each other: reads like a
    table of contents. Each includeme registers its own services (pypirepo.interfaces)."""
    from .fastpath import FastPath
    from .interfaces import IAppConfig, ISettings
    from .wsgi import ReadableURLs

    # 1. Settings: the ini overlaid by PYPIREPO_* variables, validated before anything runs.
    settings = Settings(ini)
    config = Configurator(settings=dict(settings))
    registry = config.registry
    registry.registerUtility(settings, ISettings)
    with one_line_exit():
        registry.registerUtility(AppConfig.from_settings(settings), IAppConfig)
        # Browser sessions (their secret, CSRF, the proxy's user header): checked before
        # anything is touched, so a production start without a secret stops at once.
        config.include(".access.session")
        config.include(".storage")  # the backend; it checks it can reach its bucket
        # 2. The metadata cache: schema first (a database that cannot be used stops the
        #    start here, saying why).
        config.include(".db")
        # 3. The repositories, and the cache reconciled with storage (the truth); then
        #    who may do what in them (grants name the repositories).
        config.include(".repositories")
        config.include(".access")  # users, groups, grants; the development account
    # 4. Pyramid: security, every URL, the views.
    config.include(".security")
    config.include(".routes")
    config.include(".views")
    # Cached index pages for anonymous readers skip the router (the busiest requests;
    # their URLs are plain ASCII without a query, checked there); a URL that cannot be
    # decoded is refused before the router.
    return FastPath(ReadableURLs(config.make_wsgi_app()), registry)
