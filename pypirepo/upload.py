"""The legacy upload API's form: every client's field dialect, digests, filename rules.

Parsing and validation only; storing is the index service's job. Every rejection is an
UploadError carrying the HTTP status and a message meant for the status line and body.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import BinaryIO

import multipart

from . import distinfo, names
from .errors import Refused, bad

CHUNK = 1024 * 1024
# Form fields (descriptions included) stay in memory up to this size; the file part
# beyond it spools to a temporary file, so memory does not grow with the upload.
SPOOL_LIMIT = 1024 * 1024
# What an upload's body may hold beyond the file (the form's other fields, descriptions
# included) before it counts as too large.
FORM_ALLOWANCE = 1024 * 1024

# Aliases some clients send for the core-metadata field names (the upload form's names
# differ from METADATA's, and not every client uses the same ones).
ALIASES = {
    "provides_extras": "provides_extra",
    "import_name": "import_names",
    "license_files": "license_file",
    "platforms": "platform",
    "supported_platforms": "supported_platform",
    "classifier": "classifiers",
}
MULTI = {
    "classifiers", "requires_dist", "provides_extra", "project_urls", "platform", "dynamic",
    "license_file", "obsoletes_dist", "provides_dist", "requires_external", "supported_platform",
    "import_names", "import_namespaces",
}
FILE_FIELDS = {"content", "gpg_signature", "attestations"}


# A refused upload is a refused request like any other (pypirepo.errors).
UploadError = Refused


@dataclass
class UploadForm:
    name: str
    version: str
    filetype: str
    filename: str
    content: BinaryIO
    pyversion: str = ""
    digests: dict[str, str] = field(default_factory=dict)
    fields: dict = field(default_factory=dict)


def _clean(value) -> str | None:
    """'' and 'UNKNOWN' mean absent, as in warehouse."""
    if value is None:
        return None
    value = str(value).strip()
    return None if value in ("", "UNKNOWN") else value


class Body:
    """A parsed multipart body: text fields (decoded), and the parts that carry a file."""

    def __init__(self, fields, files):
        self.fields, self.files = fields, files

    def close(self) -> None:
        for _name, part in self.files.iterallitems():
            part.close()


# Parts always taken as files, with or without a filename= in their header: `content` is
# the distribution, whatever a client says of it (a text field of a zip is no text).
ALWAYS_FILES = frozenset({"content"})
# A text field is held in memory once decoded: a long description is fine, a gigabyte
# of "text" is not.
MAX_TEXT_FIELD = 16 * SPOOL_LIMIT


def read_body(environ, max_size: int) -> Body:
    """Parse the request's multipart/form-data body (raises UploadError).

    `multipart` rather than WebOb's cgi-based parser: 0.1 ms instead of 0.6 ms for a
    twine upload of a small wheel, and no use of the cgi module, which Python 3.13 drops.
    Its own parse_form_data() would decode every part without a filename as text, and
    fail with a UnicodeDecodeError on one that is not: parts are sorted here instead.
    """
    ctype, options = multipart.parse_options_header(environ.get("CONTENT_TYPE", ""))
    boundary = options.get("boundary")
    if ctype != "multipart/form-data" or not boundary:
        raise bad("Malformed multipart/form-data body: no boundary in its Content-Type.")
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        raise bad("Invalid Content-Length header.") from None
    fields, files = multipart.MultiDict(), multipart.MultiDict()
    body = Body(fields, files)
    try:
        for part in multipart.MultipartParser(
                environ["wsgi.input"], boundary, length, strict=True,
                spool_limit=SPOOL_LIMIT, memory_limit=16 * SPOOL_LIMIT,
                disk_limit=max_size + SPOOL_LIMIT, part_limit=1000):
            if not part.name:
                part.close()
                raise bad("Malformed multipart/form-data body: a part without a name.")
            if part.filename is not None or part.name in ALWAYS_FILES:
                files.append(part.name, part)
                continue
            try:
                fields.append(part.name, _text(part))
            finally:
                part.close()
    except multipart.MultipartError as exc:
        body.close()
        raise bad(f"Malformed multipart/form-data body: {exc}") from None
    except BaseException:
        body.close()
        raise
    if not fields and not files:
        raise bad("Malformed multipart/form-data body: no fields.")
    return body


def _text(part) -> str:
    """A text field's value: UTF-8 unless its part names another charset."""
    if part.size > MAX_TEXT_FIELD:
        raise bad(f"Field {part.name!r} is too large: {part.size} bytes, the limit is "
                  f"{MAX_TEXT_FIELD}.")
    charset = part.charset or "utf-8"
    try:
        return part.raw.decode(charset)
    except LookupError:
        raise bad(f"Field {part.name!r} has an unknown charset {charset!r}.") from None
    except UnicodeDecodeError:
        raise bad(f"Field {part.name!r} is not valid {charset} text.") from None


def parse_form(body: Body) -> UploadForm:
    """Build an UploadForm from the parsed multipart body."""
    post = body.fields
    action = post.get(":action")
    if action in ("submit", "submit_pkg_info", "doc_upload"):
        raise UploadError(410, f"The {action!r} action is no longer supported.")
    if action != "file_upload":
        raise bad("Unknown or missing ':action'; use ':action=file_upload'.")
    if post.get("protocol_version", "1") != "1":
        raise bad("Unknown protocol version.")

    fields: dict = {}
    for key in set(post.keys()) | set(body.files.keys()):
        if key.startswith(":") or key in FILE_FIELDS:
            continue
        if key in body.files:
            raise bad(f"{key}: Should not be a tuple.")
        values = post.getall(key)
        norm = ALIASES.get(key, key)
        if norm in MULTI:
            fields.setdefault(norm, []).extend(v for v in map(_clean, values) if v)
        else:
            fields[norm] = _clean(values[-1])

    content = _content_part(body, "Upload payload does not have a file.",
                            "The 'content' part has no filename; send the file with its "
                            "filename.")
    name = fields.get("name")
    version = fields.get("version")
    if not name:
        raise bad("'name' is a required field.")
    if not names.is_valid_project_name(name):
        raise bad(
            f"{name!r} is an invalid value for name. Start and end with a letter or numeral "
            "containing only ASCII numeric and '.', '_' and '-'."
        )
    if not version:
        raise bad("'version' is a required field.")
    filename = _checked_filename(content.filename)
    filetype = fields.get("filetype") or (
        names.WHEEL if filename.endswith(".whl") else names.SDIST
    )
    if filetype not in (names.WHEEL, names.SDIST):
        raise bad(f"Unknown type of file {filetype!r}. Use a known file type.")
    digests = {}
    for algo in ("md5", "sha256", "blake2_256"):
        value = fields.pop(f"{algo}_digest", None)
        if value:
            digests[algo] = value.lower()
    if not digests:
        raise bad("Include at least one message digest.")
    return UploadForm(
        name=name, version=version, filetype=filetype, filename=filename,
        content=content.file, pyversion=fields.get("pyversion") or "", digests=digests,
        fields=fields,
    )


def _content_part(body: Body, missing: str, unnamed: str):
    """The one file part of an upload (`content`)."""
    contents = body.files.getall("content")
    if len(contents) > 1:
        raise bad(f"The upload has {len(contents)} 'content' parts; send one file per upload.")
    content = contents[0] if contents else None
    if content is None:
        raise bad(missing)
    if not content.filename:
        raise bad(unnamed)
    if (content.content_type or "").startswith("image/"):
        raise bad("Invalid distribution file.")
    return content


def _checked_filename(filename: str) -> str:
    # Never trust a client path: only the last segment names the file, and it must be clean.
    if "/" in filename or "\\" in filename or not names.is_safe_filename(filename):
        raise bad(f"Invalid filename {filename!r}{names.length_note(filename)}.")
    return filename


def browser_form(body: Body) -> UploadForm:
    """The UploadForm of a file chosen in the web UI's upload form: a browser sends the
    file alone, so its name, version and type come from the filename (inspect() then
    checks them against the metadata inside, as for any upload), and its digests are the
    ones the upload computes anyway (hash_stream): none is sent to compare with."""
    content = _content_part(body, "Choose a file to upload.", "Choose a file to upload.")
    filename = _checked_filename(content.filename)
    try:
        dist = names.parse_filename(filename)
    except names.InvalidFilename as exc:
        raise bad(f"{exc} Upload a wheel (.whl) or a source distribution (.tar.gz, "
                  ".zip).") from None
    return UploadForm(name=dist.project, version=dist.version, filetype=dist.packagetype,
                      filename=filename, content=content.file)


@dataclass
class Received:
    size: int
    md5: str
    sha256: str
    blake2_256: str


def hash_stream(stream: BinaryIO, max_size: int) -> Received:
    """Hash the uploaded file in chunks (memory stays flat) and enforce the size limit."""
    md5, sha256, blake = hashlib.md5(), hashlib.sha256(), hashlib.blake2b(digest_size=32)
    size = 0
    stream.seek(0)
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > max_size:
            raise UploadError(413, f"File too large. Limit is {max_size} bytes.")
        md5.update(chunk)
        sha256.update(chunk)
        blake.update(chunk)
    stream.seek(0)
    if size == 0:
        raise bad("Invalid distribution file. The file is empty.")
    return Received(size, md5.hexdigest(), sha256.hexdigest(), blake.hexdigest())


def check_digests(form: UploadForm, got: Received) -> None:
    for algo, sent in form.digests.items():
        if getattr(got, algo) != sent:
            raise bad(
                "The digest supplied does not match a digest calculated from the uploaded file."
            )


@dataclass
class Inspected:
    dist: names.DistFile
    core_metadata: bytes | None  # served as .metadata (wheels only)
    info: dict
    requires_python: str | None


def inspect(form: UploadForm) -> Inspected:
    """Check the filename against name and version, and read the metadata inside."""
    try:
        dist = names.check_upload_filename(form.filename, form.name, form.version, form.filetype)
    except names.InvalidFilename as exc:
        raise bad(str(exc)) from None
    try:
        if dist.packagetype == names.WHEEL:
            core = distinfo.wheel_metadata(form.content, form.filename)
            raw = core
        else:
            core = None
            raw = distinfo.sdist_metadata(form.content, form.filename)
    except distinfo.InvalidDistribution as exc:
        raise bad(str(exc)) from None
    finally:
        form.content.seek(0)
    info = distinfo.parse_metadata(raw) if raw else {}
    problem = metadata_disagrees(form.filename, info, form.name, form.version)
    if problem:
        raise bad(problem)
    if not info:
        info = _info_from_form(form.fields)
    requires_python = info.get("requires_python") or form.fields.get("requires_python")
    return Inspected(dist, core, info, requires_python or None)


def metadata_disagrees(filename: str, info: dict, name: str, version: str) -> str | None:
    """Why the metadata inside `filename` is not that of project `name` at `version`, or
    None. The same rule for an upload and for a file fetched from the upstream: a file
    is listed under the name and version its filename says, so its metadata must agree."""
    if "name" in info and names.normalize(info["name"]) != names.normalize(name):
        return f"The metadata inside {filename!r} names project {info['name']!r}, not {name!r}."
    if "version" in info and names.canonical_version(info["version"]) != \
            names.canonical_version(version):
        return (f"The metadata inside {filename!r} has version {info['version']!r}, "
                f"not {version!r}.")
    return None


def _info_from_form(fields: dict) -> dict:
    keys = (
        "name", "version", "summary", "author", "author_email", "maintainer",
        "maintainer_email", "license", "license_expression", "home_page", "keywords",
        "requires_python", "description_content_type", "download_url",
    )
    info = {k: fields[k] for k in keys if fields.get(k)}
    for k in ("classifiers", "requires_dist", "provides_extra", "project_urls"):
        if fields.get(k):
            info[k] = list(fields[k])
    distinfo.keep_description(info, fields.get("description"))
    return info
