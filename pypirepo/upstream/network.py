"""How the upstream is reached: which CAs to trust, which proxy, which credentials.

Resolved once at start-up from the settings and the environment, in the order pip and
requests use, so that a server on a corporate network reaches the upstream the way the
machine's own tools do:

- Trust: `pypi.upstream_ca_bundle` (a file or a folder of CA certificates), else
  REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE, else SSL_CERT_FILE / SSL_CERT_DIR, else the
  operating system's trust store, and certifi's bundle only when the system has none.
  Optionally a client certificate (mTLS). `pypi.upstream_verify = false` for a lab.
- Proxies: `pypi.upstream_proxy`, else HTTPS_PROXY / HTTP_PROXY / ALL_PROXY with NO_PROXY
  (either case; the lower-case one wins, as in urllib and requests). Credentials in the
  proxy's URL go in a Proxy-Authorization header; https is tunnelled with CONNECT.
- Credentials for an upstream that wants a login: the userinfo of `pypi.fallback_url`,
  else `pypi.upstream_username` / `pypi.upstream_password`, else the netrc file (NETRC,
  else ~/.netrc). They are only ever sent to the upstream's own host (client.py).

Nothing here is on the request path: the client asks `Proxies.for_url` once per host.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import netrc
import os
import re
import ssl
import sys
from base64 import b64encode
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ..settings import ConfigError, Settings, as_bool, as_str

log = logging.getLogger(__name__)

# Where distributions keep the system's CA bundle when OpenSSL's compiled-in paths are
# empty (the list truststore and pip use on Linux).
SYSTEM_CA_FILES = (
    "/etc/ssl/cert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/cert.pem",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/ca-bundle.pem",
)
_HASHED_CERT = re.compile(r"^[0-9a-fA-F]{8}\.[0-9]+$")
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@\s:]*):[^/@\s]*@")


# --- masking ---------------------------------------------------------------------------------

def mask_url(url: str) -> str:
    """The URL with its password (if any) shown as ***: fit for a log line or an error."""
    return _USERINFO.sub(r"\g<scheme>\g<user>:***@", url)


def scrub(text: str) -> str:
    """Every URL inside text with its password masked."""
    return _USERINFO.sub(r"\g<scheme>\g<user>:***@", text) if "@" in text else text


def split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """(the URL without user:password@, (user, password) or None)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return clean, (unquote(parts.username or ""), unquote(parts.password or ""))


def without_userinfo(url: str) -> str:
    return split_userinfo(url)[0] if "@" in url else url


def basic_auth(user: str, password: str) -> str:
    return "Basic " + b64encode(f"{user}:{password}".encode()).decode("ascii")


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with the default port filled in: what credentials and the
    circuit breaker are kept per."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or (443 if scheme == "https" else 80)


def origin_text(o: tuple[str, str, int]) -> str:
    scheme, host, port = o
    if ":" in host:
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + ("" if port == default else f":{port}")


# --- trust -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Trust:
    """Which CAs verify the upstream's certificate, and where they came from."""

    source: str  # for messages: "REQUESTS_CA_BUNDLE (/etc/ssl/corp.pem)"
    key: str | None = None  # the setting or variable that chose it
    cafile: str | None = None
    capath: str | None = None
    native: bool = False  # the OS's own verifier (truststore: macOS, Windows)
    verify: bool = True
    client_cert: str | None = None
    client_key: str | None = None

    @property
    def advice(self) -> str:
        """What to change to trust another CA, for an error message."""
        text = "set pypi.upstream_ca_bundle to the CA certificate (a PEM file or a folder)"
        if self.key and self.key != "pypi.upstream_ca_bundle":
            text += f", or change {self.key}"
        return text

    def context(self) -> ssl.SSLContext:
        """An SSLContext for urllib3 (built once at start-up)."""
        ctx = self._verifying()
        if self.client_cert:
            ctx.load_cert_chain(self.client_cert, self.client_key)
        return ctx

    def _verifying(self) -> ssl.SSLContext:
        if self.native:
            import truststore

            ctx = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        else:
            # These CAs alone: without cafile or capath it would add OpenSSL's default
            # paths, which SSL_CERT_FILE changes behind the order above.
            ctx = ssl.create_default_context(cafile=self.cafile, capath=self.capath) \
                if self.verify else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        # urllib3 speaks HTTP/1.1 only; say so, as urllib3's own contexts do.
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    @classmethod
    def from_settings(cls, s: Settings, production: bool = False) -> Trust:
        cert = _existing_file(s, "pypi.upstream_client_cert")
        key = _existing_file(s, "pypi.upstream_client_key")
        if key and not cert:
            raise ConfigError("pypi.upstream_client_key", "needs pypi.upstream_client_cert")
        if s.get_value("pypi.upstream_verify", as_bool, True):
            trust = resolve_trust(s.get_value("pypi.upstream_ca_bundle", as_str, None),
                                  s.environ)
        else:
            if production and (s.ini_raw("pypi.upstream_verify") or "").strip().lower() \
                    not in ("false", "0", "no", "off"):
                raise ConfigError(
                    "pypi.upstream_verify", "false is refused in production "
                    "(pypirepo.environment = production) unless it is written in the ini "
                    "file itself: an environment variable cannot switch verification off")
            trust = cls("nothing (pypi.upstream_verify = false)", "pypi.upstream_verify",
                        verify=False)
        try:
            ctx = trust._verifying()
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(trust.key or "pypi.upstream_ca_bundle",
                              f"cannot load the CA certificates of {trust.source}: {exc}") \
                from None
        if cert:
            try:
                ctx.load_cert_chain(cert, key)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError("pypi.upstream_client_cert",
                                  f"cannot load the client certificate: {exc}") from None
        return dataclasses.replace(trust, client_cert=cert, client_key=key)


def resolve_trust(ca_bundle: str | None, environ, defaults=None, platform: str = sys.platform
                  ) -> Trust:
    """The first CA source that is set, in the order documented above.

    `environ` is a lookup (Settings.environ); `defaults` OpenSSL's compiled-in paths
    (ssl.get_default_verify_paths(); the tests give their own).
    """
    if ca_bundle:
        return _ca_path(ca_bundle, "pypi.upstream_ca_bundle")
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        value = environ(name)
        if value:
            return _ca_path(value, name)
    cafile, capath = environ("SSL_CERT_FILE"), environ("SSL_CERT_DIR")
    if cafile or capath:
        if cafile and not os.path.isfile(cafile):
            raise ConfigError("SSL_CERT_FILE", f"no such file: {cafile}")
        if capath and not os.path.isdir(capath):
            raise ConfigError("SSL_CERT_DIR", f"no such folder: {capath}")
        used = [(n, v) for n, v in (("SSL_CERT_FILE", cafile), ("SSL_CERT_DIR", capath)) if v]
        return Trust(" and ".join(f"{n} ({v})" for n, v in used),
                     " / ".join(n for n, _ in used), cafile or None, capath or None)
    system = _system_trust(defaults, platform)
    if system is not None:
        return system
    import certifi

    return Trust(f"certifi's bundle ({certifi.where()}), as the system has no CA "
                 "certificates", None, certifi.where())


def _ca_path(path: str, name: str) -> Trust:
    if os.path.isdir(path):
        return Trust(f"{name} ({path})", name, capath=path)
    if os.path.isfile(path):
        return Trust(f"{name} ({path})", name, cafile=path)
    raise ConfigError(name, f"no such file or folder: {path}")


def _system_trust(defaults, platform: str) -> Trust | None:
    if platform in ("darwin", "win32"):
        try:
            import truststore  # noqa: F401 - the OS's own verifier, as pip uses it
        except ImportError:
            return None
        return Trust("the system trust store", native=True)
    # Linux and the BSDs: what OpenSSL was built to look at (its environment variables
    # were taken above), else where the distributions keep their bundle.
    d = defaults or ssl.get_default_verify_paths()
    cafile = d.openssl_cafile if d.openssl_cafile and os.path.isfile(d.openssl_cafile) \
        else None
    capath = d.openssl_capath if d.openssl_capath and _has_hashed_certs(d.openssl_capath) \
        else None
    if cafile or capath:
        where = " and ".join(p for p in (cafile, capath) if p)
        return Trust(f"the system trust store ({where})", None, cafile, capath)
    for candidate in SYSTEM_CA_FILES if defaults is None else ():
        if os.path.isfile(candidate):
            return Trust(f"the system trust store ({candidate})", None, candidate)
    return None


def _has_hashed_certs(folder: str) -> bool:
    try:
        return any(_HASHED_CERT.match(n) for n in os.listdir(folder))
    except OSError:
        return False


def _existing_file(s: Settings, key: str) -> str | None:
    path = s.get_value(key, as_str, None)
    if path and not os.path.isfile(path):
        raise ConfigError(key, f"no such file: {path}")
    return path or None


# --- proxies ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Proxy:
    url: str  # without credentials
    source: str  # "HTTPS_PROXY", "pypi.upstream_proxy"
    auth: str | None = None  # the Proxy-Authorization header value

    @property
    def shown(self) -> str:
        """The proxy for a message: its URL, the user but never the password."""
        if self.auth is None:
            return mask_url(self.url)  # a SOCKS proxy keeps its credentials in its URL
        user = _decode_user(self.auth)
        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://{quote(user, safe='')}:***@{rest}"


def _decode_user(auth: str) -> str:
    from base64 import b64decode

    return b64decode(auth.split(" ", 1)[1]).decode().split(":", 1)[0]


@dataclass(frozen=True)
class Proxies:
    by_scheme: dict = field(default_factory=dict)  # "http" | "https" | "all" -> Proxy
    no_proxy: tuple = ()

    def for_url(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy for a URL, as requests chooses it (NO_PROXY first)."""
        if not self.by_scheme or self._bypass(host, port):
            return None
        return self.by_scheme.get(scheme) or self.by_scheme.get("all")

    def _bypass(self, host: str, port: int) -> bool:
        host = host.lower().strip("[]")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        for entry in self.no_proxy:
            if entry == "*":
                return True
            if ip is not None and "/" in entry:
                try:
                    if ip in ipaddress.ip_network(entry, strict=False):
                        return True
                except ValueError:
                    pass
                continue
            name, _, entry_port = entry.partition(":") if entry.count(":") == 1 \
                else (entry, "", "")
            if entry_port and entry_port != str(port):
                continue
            name = name.lstrip("*").lstrip(".")
            if name and (host == name or host.endswith("." + name)):
                return True
        return False

    @classmethod
    def from_settings(cls, s: Settings) -> Proxies:
        override = s.get_value("pypi.upstream_proxy", as_str, None)
        if override:
            if override.lower() in ("direct", "none"):
                return cls()
            proxy = _proxy(override, "pypi.upstream_proxy")
            return cls({"all": proxy})
        found: dict[str, Proxy] = {}
        for scheme in ("http", "https", "all"):
            # The lower-case variable wins, and an empty one switches the proxy off
            # (urllib.request.getproxies_environment, which requests uses).
            for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY"):
                value = s.environ(name)
                if value is not None:
                    if value.strip():
                        found[scheme] = _proxy(value.strip(), name)
                    break
        no_proxy = s.environ("no_proxy")
        if no_proxy is None:
            no_proxy = s.environ("NO_PROXY")
        entries = tuple(e.strip().lower() for e in (no_proxy or "").replace(" ", ",").split(",")
                        if e.strip())
        return cls(found, entries)

    def describe(self) -> str:
        if not self.by_scheme:
            return "none"
        return ", ".join(f"{p.shown} for {scheme} (from {p.source})"
                         for scheme, p in self.by_scheme.items())


def _proxy(value: str, source: str) -> Proxy:
    if "://" not in value:
        value = "http://" + value  # requests' reading of "proxy:3128"
    url, creds = split_userinfo(value)
    scheme = urlsplit(url).scheme.lower()
    if scheme.startswith("socks"):
        try:
            import urllib3.contrib.socks  # noqa: F401 - needs PySocks
        except ImportError:
            raise ConfigError(source, f"{mask_url(value)} is a SOCKS proxy; install PySocks "
                                      "(pip install pysocks) to use it") from None
        # SOCKS takes its credentials in the URL itself.
        return Proxy(value, source)
    if scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise ConfigError(source, f"expected an http(s) proxy URL, got {mask_url(value)!r}")
    auth = basic_auth(*creds) if creds else None
    return Proxy(url.rstrip("/"), source, auth)


# --- upstream credentials --------------------------------------------------------------------

@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    source: str  # for messages: never the password itself

    @property
    def header(self) -> str:
        return basic_auth(self.username, self.password)

    @classmethod
    def from_settings(cls, s: Settings, url_creds: tuple[str, str] | None, host: str
                      ) -> Credentials | None:
        if url_creds is not None:
            return cls(url_creds[0], url_creds[1], "the userinfo of pypi.fallback_url")
        user = s.get_value("pypi.upstream_username", as_str, None)
        password = s.get_value("pypi.upstream_password", as_str, None)
        if password and not user:
            raise ConfigError("pypi.upstream_password", "needs pypi.upstream_username")
        if user:
            return cls(user, password or "", "pypi.upstream_username / pypi.upstream_password")
        return _from_netrc(s, host)


def _from_netrc(s: Settings, host: str) -> Credentials | None:
    """requests' get_netrc_auth: the NETRC file, else ~/.netrc or ~/_netrc."""
    path = s.environ("NETRC")
    if path:
        candidates = [os.path.expanduser(path)]
    else:
        home = s.environ("HOME") or os.path.expanduser("~")
        candidates = [os.path.join(home, ".netrc"), os.path.join(home, "_netrc")]
    for candidate in candidates:
        if not os.path.isfile(candidate):
            continue
        try:
            entry = netrc.netrc(candidate).authenticators(host)
        except (netrc.NetrcParseError, OSError) as exc:
            log.warning("ignoring %s: %s", candidate, exc)
            return None
        if entry is None:
            return None
        login = entry[0] or entry[1] or ""
        return Credentials(login, entry[2] or "", f"netrc ({candidate})")
    return None
