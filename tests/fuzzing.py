"""Hypothesis strategies for the fuzz tests: URLs built on every route pattern, and
upload forms mutated from the one twine sends.

A URL path is built as bytes, as a WSGI server hands it over once percent-decoded
(PEP 3333: a latin-1 str of those bytes), so that it can hold anything a client can
send: bytes that are not UTF-8, NULs, separators, escapes left undecoded.
"""

from __future__ import annotations

import hashlib
import re

from hypothesis import strategies as st

from distfactory import upload_fields

# What a segment of a URL may be: names and filenames the index knows, spellings of
# them, traversal and escape tricks, and anything at all.
KNOWN = ["demo", "Demo_Pkg", "demo.pkg", "other", "demo-1.0-py3-none-any.whl",
         "demo-1.0.tar.gz", "demo-1.0-py3-none-any.whl.metadata", "1.0", "1.0.0", "yank",
         "unyank", "json", "events"]
TRICKS = ["", ".", "..", "%", "%zz", "%ff", "%00", "\x00", "a/b", "+", "//", "-", "_",
          "demo/../other", "\\", "x" * 300, "1" * 200, "\u00e9", "\ud7ff", "%2e%2e",
          "\u202e", "demo\x00.whl"]


def _segment_bytes():
    return st.one_of(
        st.sampled_from(KNOWN).map(str.encode),
        st.sampled_from(TRICKS).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.text(max_size=24).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=24),
    )


def _fill(pattern: str):
    """A strategy of paths (bytes) for a Pyramid route pattern: each {placeholder} (or
    {name:regex}) filled with a fuzzed segment, or with what its regex allows."""
    parts = re.split(r"(\{[^}]*\})", pattern)
    strategies = []
    for part in parts:
        if part.startswith("{"):
            _, _, regex = part[1:-1].partition(":")
            choices = [s.encode() for s in regex.split("|")] if regex else []
            strategies.append(st.one_of(st.sampled_from(choices), _segment_bytes())
                              if choices else _segment_bytes())
        else:
            strategies.append(st.just(part.encode()))
    return st.tuples(*strategies).map(b"".join)


def paths(patterns: list[str]):
    """Paths on every pattern, and a few on none."""
    return st.one_of(*[_fill(p) for p in patterns],
                     st.binary(max_size=40).map(lambda b: b"/" + b))


QUERIES = st.one_of(
    st.just(b""),
    st.sampled_from([b"format=application/vnd.pypi.simple.v1+json", b"format=%ff",
                     b"a=%zz&b", b"%ff=1", b"format=text/html", b"x=\xff"]),
    st.binary(max_size=30),
)
METHODS = st.sampled_from(["GET", "HEAD", "POST", "DELETE", "PUT", "OPTIONS"])
ACCEPTS = st.sampled_from([None, "application/vnd.pypi.simple.v1+json", "text/html",
                           "application/json", "*/*", "garbage;;q=x", "application/vnd"
                           ".pypi.simple.latest+json;q=0.1, text/html;q=0.2", "\xff"])
RANGES = st.sampled_from([None, "bytes=0-9", "bytes=-0", "bytes=-5", "bytes=9-2",
                          "bytes=99999999-", "bytes=x", "bytes=-0,0-1", "items=0-1"])
BODIES = st.one_of(st.just(b""), st.sampled_from([b'{"reason": "x"}', b'{"reason": 5}',
                                                  b'{"reason": "\\u0000"}', b"[]", b"{",
                                                  b'"\\udcff"', b"\xff\xfe"]),
                   st.binary(max_size=64))


# --- upload forms --------------------------------------------------------------------

FIELD_NAMES = [":action", "protocol_version", "name", "version", "filetype", "pyversion",
               "metadata_version", "sha256_digest", "md5_digest", "blake2_256_digest",
               "requires_python", "summary", "description", "classifiers", "provides_extras",
               "license_files", "gpg_signature", "attestations", "content", "", "x" * 80]


def _text_values():
    return st.one_of(
        st.sampled_from(["", "UNKNOWN", "file_upload", "submit", "1", "2", "demo", "Demo_Pkg",
                         "1.0", "1.0.0", "1.0" + ".0" * 80, "bdist_wheel", "sdist", "py3",
                         "py3" * 60, ">=3.8", ">=3" + ",!=3.1" * 80, "0" * 64, "\x00",
                         "demo\x00"]).map(str.encode),
        st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=40),
    )


def _headers(name: bytes):
    disposition = b'Content-Disposition: form-data; name="%s"' % name
    return st.one_of(
        st.just(disposition),
        st.sampled_from([b'; filename="f.txt"', b"; filename=", b'; filename=""',
                         b"\r\nContent-Type: text/plain; charset=latin-1",
                         b"\r\nContent-Type: text/plain; charset=nope",
                         b"\r\nContent-Type: image/png"]).map(lambda tail: disposition + tail),
    )


@st.composite
def upload_forms(draw, dists: list):
    """(parts, content type) of a multipart body: the fields twine sends for one of dists
    (a wheel, an sdist, junk), then a few mutations, each as likely to keep the digests
    right as to break them, so that both the checks and what lies behind them are hit."""
    path, name, version = draw(st.sampled_from(dists))
    content = path.read_bytes()
    filename = path.name.encode()
    fields = {k.encode(): v.encode() for k, v in upload_fields(path, name, version).items()}
    extra: list = []
    content_header = b'Content-Disposition: form-data; name="content"; filename="%s"'
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["drop", "set", "add", "content", "filename",
                                     "content-header", "twice"]))
        if kind == "drop" and fields:
            fields.pop(draw(st.sampled_from(sorted(fields))))
        elif kind == "set":
            fields[draw(st.sampled_from(FIELD_NAMES)).encode()] = draw(_text_values())
        elif kind == "add":
            key = draw(st.sampled_from(FIELD_NAMES)).encode()
            extra.append((draw(_headers(key)), draw(_text_values())))
        elif kind == "content":
            content = draw(st.one_of(st.binary(max_size=200), st.just(content[:len(content)
                                                                               // 2])))
            if draw(st.booleans()):
                fields[b"sha256_digest"] = hashlib.sha256(content).hexdigest().encode()
                fields[b"blake2_256_digest"] = hashlib.blake2b(
                    content, digest_size=32).hexdigest().encode()
        elif kind == "filename":
            filename = draw(st.one_of(_segment_bytes(), st.sampled_from(
                [b"demo-1.0-py3-none-any.whl", b"Demo-1.0-py3-none-any.whl",
                 b"demo-1.0.0-py3-none-any.whl", b"demo-1.0.zip", b"demo-1.0.exe",
                 b"../demo-1.0.tar.gz", b'a"b.whl'])))
        elif kind == "content-header":
            content_header = draw(st.sampled_from([
                b'Content-Disposition: form-data; name="content"',
                b'Content-Disposition: form-data; name="content"; filename=""',
                b'Content-Disposition: form-data; name="content"; filename="%s"\r\n'
                b"Content-Type: image/png",
                b'Content-Disposition: form-data; filename="%s"']))
        elif kind == "twice":
            extra.append((content_header.replace(b"%s", filename), content))
    parts = [(b'Content-Disposition: form-data; name="%s"' % k, v) for k, v in fields.items()]
    parts += extra
    parts.append((content_header.replace(b"%s", filename), content))
    boundary = draw(st.sampled_from([b"fuzz-boundary-1234", b"x"]))
    body = b"".join(b"--%s\r\n%s\r\n\r\n%s\r\n" % (boundary, h, v) for h, v in parts)
    body += b"--%s--\r\n" % boundary
    if draw(st.integers(0, 9)) == 0:
        body = body[: draw(st.integers(0, len(body)))]  # cut short
    ctype = draw(st.sampled_from([b"multipart/form-data; boundary=" + boundary,
                                  b"multipart/form-data", b"multipart/form-data; boundary=y",
                                  b"multipart/form-data; boundary=%s; charset=nope" % boundary,
                                  b"application/x-www-form-urlencoded"]))
    return body, ctype.decode("latin-1")
