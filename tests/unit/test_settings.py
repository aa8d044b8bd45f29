"""Settings: ini overlaid by PYPIREPO_* variables, validated with key-naming messages."""

import pytest

from pypirepo.settings import (
    AppConfig,
    ConfigError,
    Settings,
    as_duration,
    as_size,
    env_name,
)

BASE = {"sqlalchemy.url": "sqlite://"}


def test_env_names():
    assert env_name("sqlalchemy.url") == "PYPIREPO_SQLALCHEMY_URL"
    assert env_name("storage.endpoint-url") == "PYPIREPO_STORAGE_ENDPOINT_URL"
    assert env_name("pypi.default_read") == "PYPIREPO_PYPI_DEFAULT_READ"


def test_environment_overrides_ini():
    s = Settings(dict(BASE, **{"pypi.fallback": "none"}),
                 {"PYPIREPO_PYPI_FALLBACK": "cache", "PYPIREPO_SQLALCHEMY_URL": "sqlite:///x"})
    config = AppConfig.from_settings(s)
    assert config.fallback == "cache"
    assert config.database_url == "sqlite:///x"
    assert s["pypi.fallback"] == "cache"  # the Mapping view agrees


@pytest.mark.parametrize("key,value,needle", [
    ("pypi.fallback", "sometimes", "pypi.fallback: expected one of none, redirect, cache"),
    ("pypi.allow_overwrite", "maybe", "pypi.allow_overwrite: expected true or false"),
    ("pypi.max_upload_size", "lots", "pypi.max_upload_size: expected a size"),
    ("auth.cache_ttl", "soon", "auth.cache_ttl: expected a duration"),
    ("pypi.default_read", "every one!", "pypi.default_read:"),
])
def test_bad_values_name_the_key(key, value, needle):
    with pytest.raises(ConfigError) as exc:
        AppConfig.from_settings(Settings(dict(BASE, **{key: value}), {}))
    assert needle in str(exc.value)
    assert exc.value.key == key


def test_missing_database_url():
    with pytest.raises(ConfigError, match="sqlalchemy.url: is required"):
        AppConfig.from_settings(Settings({}, {}))


@pytest.mark.parametrize("ini, env", [
    ({"sqlalchemy.url": ""}, {}),  # production.ini's blank line
    ({"sqlalchemy.url": "  "}, {}),
    ({"sqlalchemy.url": "sqlite://"}, {"PYPIREPO_SQLALCHEMY_URL": ""}),
])
def test_a_blank_required_key_is_missing(ini, env):
    with pytest.raises(ConfigError) as exc:
        AppConfig.from_settings(Settings(ini, env))
    assert str(exc.value) == ("sqlalchemy.url: is required (set it in the ini or as "
                              "PYPIREPO_SQLALCHEMY_URL)")


def test_user_without_hash():
    with pytest.raises(ConfigError, match="user.bob"):
        AppConfig.from_settings(Settings(dict(BASE, **{"user.bob": ""}), {}))


def test_sizes_and_durations():
    assert as_size("100MB") == 100_000_000
    assert as_size("1GiB") == 1024**3
    assert as_size("512") == 512
    assert as_duration("3d") == 3 * 86400
    assert as_duration("10m") == 600
    assert as_duration("30") == 30


def test_unknown_storage_backend():
    from pypirepo.storage import storage_from_settings

    with pytest.raises(ConfigError, match="pypirepo.storage: unknown backend 'ftp'"):
        storage_from_settings(Settings({"pypirepo.storage": "ftp"}, {}))


def test_local_storage_needs_a_dir():
    from pypirepo.storage import storage_from_settings

    with pytest.raises(ConfigError, match="storage.dir: is required"):
        storage_from_settings(Settings({"pypirepo.storage": "local"}, {}))


def test_hash_password_command_output_verifies():
    import subprocess
    import sys
    from pathlib import Path

    from pypirepo.access import PASSWORDS

    exe = Path(sys.executable).parent / "pypirepo-hash-password"
    out = subprocess.run([str(exe)], input="hunter2\n", capture_output=True, text=True,
                         timeout=30)
    hashed = out.stdout.strip()
    assert out.returncode == 0 and hashed.startswith("$pbkdf2-sha256$")
    assert PASSWORDS.verify("hunter2", hashed) and not PASSWORDS.verify("hunter3", hashed)


def test_users_declared_by_the_environment_alone():
    from pypirepo.access import PASSWORDS

    bob, bob_env, carol_env, alice = (PASSWORDS.hash(p) for p in ("b", "be", "ce", "a"))
    s = Settings(dict(BASE, **{"user.bob": bob, "user.Carol.X": "carol-hash"}),
                 {"PYPIREPO_USER_ALICE": alice, "PYPIREPO_USER_BOB": bob_env,
                  "PYPIREPO_USER_CAROL_X": carol_env, "PYPIREPO_USER_": "nameless",
                  "PYPIREPO_USERS": "not a user"})
    assert AppConfig.from_settings(s).users == {
        "bob": bob_env,  # an override of the ini's line
        "Carol.X": carol_env,  # an override keeps the ini's spelling of the name
        "alice": alice,  # declared by the environment alone: lower case
    }


def test_a_user_declared_by_the_environment_needs_a_hash():
    with pytest.raises(ConfigError, match="user.alice: needs a password hash"):
        AppConfig.from_settings(Settings(BASE, {"PYPIREPO_USER_ALICE": " "}))


@pytest.mark.parametrize("listen, port, expected", [
    ("localhost:6543", 7000, "localhost:7000"),
    ("0.0.0.0:6543 [::1]:6543", 0, "0.0.0.0:0 [::1]:0"),
    ("[::]:80", 8080, "[::]:8080"),
    ("example", 81, "example:81"),
])
def test_server_port_replaces_every_listen_port(listen, port, expected):
    from pypirepo.server import with_port

    assert with_port({"listen": listen, "threads": "8"}, port) == {"listen": expected,
                                                                   "threads": "8"}
    assert with_port({"host": "127.0.0.1"}, port) == {"host": "127.0.0.1", "port": str(port)}


def test_user_with_something_that_is_not_a_hash():
    with pytest.raises(ConfigError, match="user.bob: is not a password hash"):
        AppConfig.from_settings(Settings(dict(BASE, **{"user.bob": "hunter2"}), {}))


@pytest.mark.parametrize("value", ["example.org", "ftp://example.org", "https://",
                                   "https://example.org/?x=1", "https://u:p@example.org",
                                   "https://example.org:99999"])
def test_public_url_must_be_an_http_address(value):
    with pytest.raises(ConfigError, match="pypirepo.public_url"):
        AppConfig.from_settings(Settings(dict(BASE, **{"pypirepo.public_url": value}), {}))


def test_public_url_loses_its_trailing_slash():
    config = AppConfig.from_settings(
        Settings(dict(BASE, **{"pypirepo.public_url": " https://example.org/pypi/ "}), {}))
    assert config.public_url == "https://example.org/pypi"
