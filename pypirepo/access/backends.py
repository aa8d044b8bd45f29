"""Which access backend holds the users, groups and grants: `auth.backend`; and the API
tokens, which live in the database with either backend (they are made while the server
runs)."""

from __future__ import annotations

from ..settings import one_of

BACKENDS = ("config", "sql")


def backend_from_settings(settings, app_config, repositories, bootstrap_password, db):
    """(the backend, the API token store)."""
    from ..metadata.access import AccessSQL, TokensSQL
    from .config import ConfigBackend
    from .tokens import TokenStore

    name = settings.get_value("auth.backend", one_of(*BACKENDS), "config")
    # The ini's users, groups and grants: the whole story with `config`, the floor the
    # database adds to with `sql`.
    backend = ConfigBackend.from_settings(settings, app_config, repositories,
                                          bootstrap_password)
    if name == "sql":
        from .sql import SqlBackend

        backend = SqlBackend(AccessSQL(db.session_factory), backend,
                             [r.name for r in repositories])
    return backend, TokenStore(TokensSQL(db.session_factory))
