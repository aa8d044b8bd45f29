"""Writers' forms in the web UI: upload a file; yank or unyank a release (with a reason),
delete a release or a file, promote a release to another repository.

Each action is the service call the API makes (views/upload.py, views/manage.py), so the
repository checks the permission on the project: a reader gets a 403, someone who can't
read the project the answer for a missing one. Before a view runs, access.session's
tween has refused a signed-in browser's POST without its session's CSRF token (the
upload form carries it in its action's query: its multipart body is streamed to the
upload's parser, not read before). Every destructive action has a confirmation page (GET:
what will happen; POST: do it), then redirects to the page it was asked from with a
one-time message (flash.py). Everything works without JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from ... import names
from ...access.session import small_form
from ...errors import NotFound, Refused
from ...repositories.base import DELETE, UPLOAD
from ...repositories.hosted import storable_text
from ...repositories.promote import promote as promote_release
from ...routes import READS
from ...upload import FORM_ALLOWANCE, browser_form, read_body
from .. import error_response, missing, view_config
from .account import see_other
from .flash import set_flash
from .urls import client_urls, repository_page_url, ui_base, ui_pages

MAX_REASON = 1000  # characters of a yank's reason
# A refusal the form can't mend by being sent again: the error page says it.
NOT_THE_FORMS = (401, 403)


# --- what the project page offers ------------------------------------------------------------


@dataclass(frozen=True)
class Actions:
    """The writers' part of a project page, for one viewer: only what they may do."""

    upload_url: str | None  # the upload form's action (CSRF token included); None: may not
    release_url: str | None  # where the shown release's actions are; None: may not change it
    targets: tuple  # (value, label) of the repositories it may be promoted to
    file_urls: dict  # filename -> the URL of its deletion

    @property
    def any(self) -> bool:
        return bool(self.upload_url or self.release_url)


def upload_target(repository):
    """The hosted repository an upload into this one is stored in, or None (a proxy, a
    group without a hosted member)."""
    return repository if repository.kind == "hosted" else \
        getattr(repository, "upload_target", None)


def may_upload(work, repository, project: str) -> bool:
    target = upload_target(repository)
    return target is not None and all(work.may(r, project, UPLOAD)
                                      for r in {repository, target})


def may_change(work, repository, project: str, holder) -> bool:
    """Delete, yank and promote out: in the repository of the page, and in the one that
    holds the files when that is another (a group's member)."""
    return all(work.may(r, project, DELETE) for r in {repository, holder or repository})


def promotion_targets(request, project: str, holder_name: str) -> list[tuple[str, str]]:
    """The hosted repositories other than the holder the viewer may upload the project to."""
    work = request.work
    return [(r.name, r.name) for r in request.repositories
            if r.kind == "hosted" and r.name != holder_name and work.may(r, project, UPLOAD)]


def with_token(request, url: str, **params) -> str:
    """A multipart form's action: the CSRF token in its query (access.session)."""
    token = request.sessions.csrf_token(request) if request.sessions else None
    query = {**({"csrf_token": token} if token else {}),
             **{k: v for k, v in params.items() if v}}
    return url + ("?" + urlencode(query) if query else "")


def project_actions(request, context, page) -> Actions | None:
    """What the viewer may do on the project page, or None (a reader: nothing shown)."""
    if request.identity is None:
        return None  # nobody signed in may write (or would need to sign in first)
    work, repository, name = request.work, request.repository, page.name
    base = ui_base(request, context)
    upload_url = with_token(request, base + "/upload", project=name) \
        if may_upload(work, repository, name) else None
    holder = request.repositories.get(page.holder)
    release_url = targets = None
    files = {}
    if may_change(work, repository, name, holder):
        release_url = release_path(base, name, page.version)
        targets = tuple(promotion_targets(request, name, page.holder))
        files = {f.filename: file_path(base, name, f.filename) for f in page.files}
    if upload_url is None and release_url is None:
        return None
    return Actions(upload_url, release_url, targets or (), files)


def upload_page_url(request, context) -> str | None:
    """The upload page's address (a repository's page links it: a new project's first
    file), for a viewer who may upload somewhere in the repository."""
    repository = request.repository
    if request.identity is None or upload_target(repository) is None \
            or not request.access.may_somewhere(request.identity, repository, UPLOAD):
        return None
    return ui_base(request, context) + "/upload"


def project_path(base: str, name: str) -> str:
    return f"{base}/project/{name}/"


def release_path(base: str, name: str, version: str) -> str:
    return f"{base}/project/{name}/{quote(version, safe='')}/"


def file_path(base: str, name: str, filename: str) -> str:
    return f"{base}/project/{name}/files/{quote(filename, safe='')}/delete"


def done(request, location: str, text: str, kind: str = "success"):
    response = see_other(location)
    set_flash(request, response, kind, text)
    return response


# --- upload ------------------------------------------------------------------------------------


def upload_data(request, context, project: str | None, **extra) -> dict:
    target = upload_target(request.repository)
    return {
        "repository": request.repository,
        "repository_url": repository_page_url(request, context),
        "project": project,
        "project_url": project_path(ui_base(request, context), project) if project else None,
        "form_url": with_token(request, ui_base(request, context) + "/upload",
                               project=project),
        "twine_url": client_urls(request, context)["upload_url"],
        "max_size": target.max_upload_size if target is not None else None,
        "accepts": target is not None,
        "error": None,
        **extra,
    }


def wanted_project(request) -> str | None:
    raw = request.GET.get("project", "")
    return names.normalize(raw) if raw and names.is_valid_project_name(raw) else None


@view_config(route_name=("ui_upload", "r:ui_upload"), request_method=READS,
             renderer="ui/upload.html", permission="upload")
def upload_page(context, request):
    return upload_data(request, context, wanted_project(request))


@view_config(route_name=("ui_upload", "r:ui_upload"), request_method="POST",
             renderer="ui/upload.html", permission="upload")
def upload(context, request):
    project = wanted_project(request)

    def again(status: int, error: str):
        request.response.status = status
        return upload_data(request, context, project, error=error)

    target = upload_target(request.repository)
    if target is None:
        return again(405, f"Repository {request.repository.name!r} does not take uploads.")
    limit = target.max_upload_size
    if (request.content_length or 0) > limit + FORM_ALLOWANCE:
        return again(413, f"File too large. Limit is {limit} bytes.")
    if not (request.content_type or "").startswith("multipart/form-data"):
        return again(400, "Send the file with the upload form.")
    try:
        body = read_body(request.environ, limit)
        try:
            form = browser_form(body)
            if project is not None and names.normalize(form.name) != project:
                return again(400, f"{form.filename!r} is a file of project {form.name!r}, "
                                  f"not of {project!r}.")
            message = request.repository.upload(request.work, form)
        finally:
            body.close()  # the spooled file part, now in storage or refused
    except Refused as exc:
        if exc.status in NOT_THE_FORMS:
            raise
        return again(exc.status, exc.message)
    name, version = names.normalize(form.name), form.version
    return done(request, release_path(ui_base(request, context), name, version), message)


# --- a release's actions -------------------------------------------------------------------------


def release_page(request, context, version: str):
    """The project page's data at the release, once the viewer may change it; raises
    NotFound (a missing release), Hidden (may not read) or Refused (may only read)."""
    request.work.require(request.repository, context.name, DELETE)
    page = ui_pages(request).project(request.work, request.repository, context.name, version)
    if page is None:
        raise NotFound(f"{context.name} {version}")
    return page


def confirm_data(request, context, action: str, page, form=None, filename=None,
                 error=None) -> dict:
    base = ui_base(request, context)
    form = form or {}
    data = {
        "action_name": action, "project": page, "filename": filename, "error": error,
        "repository": request.repository,
        "repository_url": repository_page_url(request, context),
        "project_url": project_path(base, page.name),
        "cancel_url": release_path(base, page.name, page.version),
        "reason": form.get("reason", request.GET.get("reason", "")) if action == "yank"
        else "",
        "move": form.get("move") == "yes",
        "targets": promotion_targets(request, page.name, page.holder)
        if action == "promote" else [],
        "chosen": form.get("to", request.GET.get("to", "")),
    }
    data["post_url"] = file_path(base, page.name, filename) if filename else \
        release_path(base, page.name, page.version) + action
    return data


def _release_or_answer(context, request):
    """(version, page) or (None, the answer: a 404 or the missing-project answer)."""
    version = request.matchdict["version"]
    if not context.valid:
        return None, error_response(request, 404, "No such version.")
    try:
        return version, release_page(request, context, version)
    except NotFound as exc:
        return None, missing(request, exc, f"{context.name!r} has no release {version!r}.")


@view_config(route_name=("ui_release_action", "r:ui_release_action"), request_method=READS,
             renderer="ui/manage_confirm.html")
def confirm_release_action(context, request):
    version, page = _release_or_answer(context, request)
    if version is None:
        return page  # the answer
    return confirm_data(request, context, request.matchdict["action"], page)


@view_config(route_name=("ui_release_action", "r:ui_release_action"), request_method="POST",
             renderer="ui/manage_confirm.html")
def release_action(context, request):
    version, page = _release_or_answer(context, request)
    if version is None:
        return page
    action, form = request.matchdict["action"], small_form(request)
    repo, work, name = request.repository, request.work, page.name
    base = ui_base(request, context)
    here = release_path(base, name, page.version)
    what = f"{page.display_name} {page.version}"

    def again(status: int, error: str):
        request.response.status = status
        return confirm_data(request, context, action, page, form, error=error)

    try:
        if action in ("yank", "unyank"):
            reason = " ".join(form.get("reason", "").split()) if action == "yank" else ""
            if len(reason) > MAX_REASON:
                return again(400, f"The reason is too long: at most {MAX_REASON} characters.")
            if not storable_text(reason):
                return again(400, "The reason contains a NUL or an invalid character.")
            repo.set_yanked(work, name, page.version, action == "yank", reason or None)
            text = f"Yanked {what}" + (f": {reason}" if reason else ".") \
                if action == "yank" else f"{what} is no longer yanked."
            return done(request, here, text)
        if action == "delete":
            gone = repo.delete_version(work, name, page.version)
            return done(request, project_path(base, name) if len(page.releases) > 1
                        else repository_page_url(request, context),
                        f"Deleted {what} ({_files(gone)}).")
        # promote
        to, move = form.get("to", ""), form.get("move") == "yes"
        target = request.repositories.get(to) if to else None
        if target is None or to not in dict(promotion_targets(request, name, page.holder)):
            return again(400, "Choose a repository you may upload to.")
        answer = promote_release(work, repo, name, page.version, target, move)
    except Refused as exc:
        if exc.status in NOT_THE_FORMS:
            raise
        return again(exc.status, exc.message)
    except NotFound as exc:
        return missing(request, exc, f"{name!r} has no release {version!r}.")
    copied = len(answer["copied"])
    text = (f"{'Moved' if move else 'Promoted'} {what} to {answer['to']}: "
            f"{_files(answer['copied']) + ' copied' if copied else 'it was there already'}.")
    return done(request, release_path(request.script_name + "/r/" + answer["to"], name,
                                      page.version) if move else here, text)


def _files(filenames) -> str:
    return f"{len(filenames)} file" + ("" if len(filenames) == 1 else "s")


# --- a file --------------------------------------------------------------------------------------


def _file_or_answer(context, request):
    """(page, filename) or (None, the answer)."""
    filename = request.matchdict["filename"]
    gone = error_response(request, 404, "No such file.")
    if not context.valid or not names.is_safe_filename(filename):
        return None, gone
    try:
        version = names.parse_filename(filename).version
    except names.InvalidFilename:
        return None, gone
    try:
        page = release_page(request, context, version)
    except NotFound as exc:
        return None, missing(request, exc, "No such file.")
    if filename not in {f.filename for f in page.files}:
        return None, gone
    return page, filename


@view_config(route_name=("ui_file_delete", "r:ui_file_delete"), request_method=READS,
             renderer="ui/manage_confirm.html")
def confirm_file_delete(context, request):
    page, filename = _file_or_answer(context, request)
    if page is None:
        return filename
    return confirm_data(request, context, "delete", page, filename=filename)


@view_config(route_name=("ui_file_delete", "r:ui_file_delete"), request_method="POST",
             renderer="ui/manage_confirm.html")
def file_delete(context, request):
    page, filename = _file_or_answer(context, request)
    if page is None:
        return filename
    base = ui_base(request, context)
    try:
        request.repository.delete_file(request.work, page.name, filename)
    except NotFound as exc:
        return missing(request, exc, "No such file.")
    if len(page.files) > 1:
        location = release_path(base, page.name, page.version)
    elif len(page.releases) > 1:
        location = project_path(base, page.name)
    else:
        location = repository_page_url(request, context)
    return done(request, location, f"Deleted {filename}.")
