"""Storage backends, chosen by `pypirepo.storage` (an alias or a dotted path)."""

from __future__ import annotations

import importlib

from ..interfaces import Storage
from ..settings import ConfigError

# alias -> "module:Class"; imported lazily so an SDK is only needed when it is used.
BACKENDS = {
    "local": "pypirepo.storage.local:LocalStorage",
    "file": "pypirepo.storage.local:LocalStorage",
    "s3": "pypirepo.storage.s3:S3Storage",
    "gcs": "pypirepo.storage.gcs:GCSStorage",
    "azure": "pypirepo.storage.azure:AzureStorage",
}


def storage_class(name: str) -> type[Storage]:
    target = BACKENDS.get(name.lower(), name)
    module_name, _, attr = target.replace(":", ".").rpartition(".")
    if not module_name:
        raise ConfigError(
            "pypirepo.storage",
            f"unknown backend {name!r} (choose from {', '.join(sorted(set(BACKENDS) - {'file'}))}"
            " or give a dotted path)",
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if name.lower() in BACKENDS:
            raise ConfigError(
                "pypirepo.storage",
                f"backend {name!r} needs {exc.name!r}: install pypirepo with its extra "
                f"(pip install '.[{name.lower()}]' in its checkout)",
            ) from None
        raise ConfigError("pypirepo.storage", f"cannot import {module_name!r}") from None
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Storage)):
        raise ConfigError("pypirepo.storage", f"{target!r} is not a storage backend")
    return cls


def storage_from_settings(settings) -> Storage:
    from ..settings import as_str

    return storage_class(settings.get_value("pypirepo.storage", as_str, "local")).from_settings(
        settings
    )


def includeme(config):
    from ..interfaces import ISettings, IStorage

    registry = config.registry
    registry.registerUtility(storage_from_settings(registry.getUtility(ISettings)), IStorage)
