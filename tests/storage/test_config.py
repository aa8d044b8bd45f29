"""Each object-store backend validates its own settings and names the key that is wrong.

No server is needed: every case fails before the first request (and none of them lets
an SDK go looking for cloud credentials on the network).
"""

from __future__ import annotations

import pytest

from pypirepo.settings import ConfigError, Settings
from pypirepo.storage import storage_from_settings

S3 = {"pypirepo.storage": "s3", "storage.bucket": "b-1", "storage.access_key": "k",
      "storage.secret_key": "s", "storage.region": "us-east-1",
      "storage.endpoint_url": "http://127.0.0.1:9"}
GCS = {"pypirepo.storage": "gcs", "storage.bucket": "b-1",
       "storage.emulator_host": "http://127.0.0.1:9"}
LOCAL = {"pypirepo.storage": "local", "storage.dir": "/tmp/pypirepo-config-test"}
AZURE = {"pypirepo.storage": "azure", "storage.container": "c-1",
         "storage.account_url": "http://127.0.0.1:9/devstoreaccount1",
         "storage.account_key": "a2V5"}


def build(base: dict, **changes):
    settings = dict(base)
    for key, value in changes.items():
        key = "storage." + key
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    return storage_from_settings(Settings(settings, environ={}))


@pytest.mark.parametrize("base, changes, key", [
    (S3, {"bucket": None}, "storage.bucket"),
    (S3, {"secret_key": None}, "storage.secret_key"),
    (S3, {"access_key": None}, "storage.access_key"),
    (S3, {"sse": "rot13"}, "storage.sse"),
    (S3, {"sse": "AES256", "kms_key_id": "arn:key"}, "storage.kms_key_id"),
    (S3, {"addressing_style": "sideways"}, "storage.addressing_style"),
    (S3, {"part_size": "1MiB"}, "storage.part_size"),
    (S3, {"parallelism": "0"}, "storage.parallelism"),
    (S3, {"redirect": "true", "redirect_expires": "30d"}, "storage.redirect_expires"),
    (S3, {"redirect": "maybe"}, "storage.redirect"),
    (GCS, {"bucket": None}, "storage.bucket"),
    (GCS, {"emulator_host": "127.0.0.1:4443"}, "storage.emulator_host"),
    (GCS, {"credentials_file": "/nonexistent/key.json"}, "storage.credentials_file"),
    (GCS, {"part_size": "1000000"}, "storage.part_size"),
    (GCS, {"redirect": "true"}, "storage.redirect"),  # nothing to sign with
    (AZURE, {"container": None}, "storage.container"),
    (AZURE, {"account_url": None}, "storage.connection_string"),
    (AZURE, {"account_url": "not a url"}, "storage.account_url"),
    (AZURE, {"sas_token": "sv=x&sig=y"}, "storage.sas_token"),
    (AZURE, {"account_key": None, "sas_token": "sv=x&sig=y", "redirect": "true"},
     "storage.redirect"),
    (AZURE, {"account_url": None, "connection_string": "nonsense"},
     "storage.connection_string"),
    (LOCAL, {"redirect": "true"}, "storage.redirect"),  # no URL to hand out for a file
    # Left blank, as production.ini ships them: "is required", not the SDK's complaint.
    (S3, {"bucket": ""}, "storage.bucket"),
    (GCS, {"bucket": " "}, "storage.bucket"),
    (AZURE, {"container": ""}, "storage.container"),
    (LOCAL, {"dir": ""}, "storage.dir"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_a_bad_setting_names_its_key(base, changes, key):
    with pytest.raises(ConfigError) as caught:
        build(base, **changes)
    assert caught.value.key == key
    assert str(caught.value).startswith(key + ":")
    if (changes.get(key.removeprefix("storage.")) or "x").strip() == "":
        assert str(caught.value) == (f"{key}: is required (set it in the ini or as "
                                     f"PYPIREPO_{key.replace('.', '_').upper()})")


def test_an_unreachable_store_stops_the_start_with_a_clear_message():
    # Port 9 (discard) refuses connections at once; boto3 retries a few times first.
    with pytest.raises(ConfigError) as caught:
        build(S3, **{"endpoint_url": "http://127.0.0.1:9"})
    assert caught.value.key == "storage.endpoint_url"
    assert "cannot reach S3" in str(caught.value)
