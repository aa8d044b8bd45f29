"""The OpenAPI 3.1 document of the access API (views/admin.py), served at
`GET /api/openapi.json`. Written by hand from the same words the service checks
(pypirepo.access.admin); tests/functional/test_admin_api.py holds it to the routes: every
documented operation answers, and every route of the access API is documented.
"""

from __future__ import annotations

from .model import PERMISSIONS
from .tokens import TOKEN_PERMISSIONS

JSON = "application/json"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict:
    # JSON for a client that asks for it (Accept: application/json), else the message as
    # plain text; the status line carries it either way.
    return {"description": description, "content": {
        JSON: {"schema": _ref("Error")}, "text/plain": {"schema": {"type": "string"}}}}


ERRORS = {
    "400": _error("What is wrong with the request."),
    "401": {**_error("Not logged in, or a wrong password or token."),
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}},
    "403": _error("Logged in, but not allowed (not an admin, or with an API token)."),
    "404": _error("No such user, group, grant or token."),
    "409": _error("The change conflicts with what is there (a name taken, or held by the "
                  "ini, or auth.backend = config)."),
    "415": _error("A write that is not Content-Type: application/json."),
}


def _op(operation_id: str, summary: str, tag: str, ok: tuple[str, dict],
        body: str | None = None, errors=("400", "401", "403"), parameters=(),
        description: str | None = None) -> dict:
    op = {"operationId": operation_id, "summary": summary, "tags": [tag],
          "responses": {ok[0]: ok[1], **{e: ERRORS[e] for e in errors}}}
    if description:
        op["description"] = description
    if body:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": _ref(body)}}}
    if parameters:
        op["parameters"] = list(parameters)
    return op


def _path_param(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema,
            "description": description}


def _query_param(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


NO_CONTENT = ("204", {"description": "Done."})
USER = _path_param("name", {"type": "string"}, "A user's name.")
GROUP = _path_param("name", {"type": "string"}, "A group's name.")
ID = _path_param("id", {"type": "integer", "minimum": 1}, "The id the listing shows.")
REVOKED = _query_param("revoked", {"type": "boolean"}, "Also list revoked tokens.")
WHEN = {"type": ["string", "null"], "format": "date-time"}

REPOSITORY = _path_param("repo", {"type": "string"}, "A repository's name.")
PROJECT = _path_param("project", {"type": "string"}, "A project's name.")
OWNER = _path_param("user", {"type": "string"}, "An owner's name.")
PROJECT_ERRORS = ("401", "403", "404")
PROJECT_REFUSALS = {
    "403": _error("The caller may read the project but not manage it (not an owner, nor "
                  "an admin; an owner where repository.<name>.owners_manage = false; an "
                  "API token)."),
    "404": _error("No such project here, or one the caller may not read (the same "
                  "answer); no such owner or grant of it."),
}


def _project_paths(prefix: str, params: list, where: str = "") -> dict:
    """A project's owners and grants, under /api/r/{repo} and /api (the default
    repository); the operations of the latter are named ...Default."""
    at = "Default" if not params else ""
    base = f"{prefix}/projects/{{project}}"
    params = [*params, PROJECT]

    def op(operation_id, summary, ok, body=None, errors=PROJECT_ERRORS, more=()):
        made = _op(operation_id + at, summary + where, "projects", ok, body=body,
                   errors=errors, parameters=[*params, *more])
        made["responses"].update(PROJECT_REFUSALS)
        return made

    add_owner = op("addOwner", "Make a user an owner of a project",
                   ("201", _json(_ref("Owners"), "The owners.")), body="OwnerAdd",
                   errors=("400", *PROJECT_ERRORS, "415"))
    add_owner["responses"]["200"] = _json(_ref("Owners"), "One already: the owners.")

    return {
        f"{base}/owners": {
            "get": op("listOwners", "A project's owners",
                      ("200", _json(_ref("Owners"), "The owners."))),
            "post": add_owner,
        },
        f"{base}/owners/{{user}}": {
            "delete": op("removeOwner", "Remove an owner (the last one: admins only)",
                         NO_CONTENT, errors=(*PROJECT_ERRORS, "409"), more=[OWNER]),
        },
        f"{base}/grants": {
            "get": op("listProjectGrants", "The grants that match a project",
                      ("200", _json(_ref("ProjectGrants"), "The grants."))),
            "post": op("createProjectGrant", "Grant a permission on the project alone",
                       ("201", _json(_ref("Grant"), "The grant (its pattern: the "
                                                    "project's name).")),
                       body="ProjectGrantCreate",
                       errors=("400", *PROJECT_ERRORS, "409", "415")),
        },
        f"{base}/grants/{{id}}": {
            "delete": op("deleteProjectGrant", "Revoke one of the project's own grants",
                         NO_CONTENT, errors=(*PROJECT_ERRORS, "409"), more=[ID]),
        },
    }


SCHEMAS = {
    "Error": {"type": "object", "required": ["message", "code"], "properties": {
        "message": {"type": "string"}, "code": {"type": "string"},
        "title": {"type": "string"}}},
    "User": {"type": "object", "required": ["name", "admin", "groups", "source"],
             "properties": {
                 "name": {"type": "string"}, "admin": {"type": "boolean"},
                 "groups": {"type": "array", "items": {"type": "string"}},
                 "source": {"enum": ["ini", "database"],
                            "description": "ini: declared by the ini or the environment, "
                                           "changed there."},
                 "password": {"type": "boolean",
                              "description": "Whether the user can log in with a password."}}},
    "UserList": {"type": "object", "required": ["users"], "properties": {
        "users": {"type": "array", "items": _ref("User")}}},
    "UserCreate": {"type": "object", "required": ["name"], "additionalProperties": False,
                   "properties": {
                       "name": {"type": "string", "pattern": r"^[A-Za-z0-9_.@+-]{1,255}$"},
                       "password": {"type": ["string", "null"], "minLength": 1,
                                    "maxLength": 1024,
                                    "description": "None: no password login (API tokens "
                                                   "only)."},
                       "admin": {"type": "boolean", "default": False}}},
    "UserChange": {"type": "object", "additionalProperties": False, "properties": {
        "password": {"type": ["string", "null"], "minLength": 1, "maxLength": 1024},
        "admin": {"type": "boolean"}}},
    "Group": {"type": "object", "required": ["name", "members", "source"], "properties": {
        "name": {"type": "string"},
        "members": {"type": "array", "items": {"type": "string"}},
        "source": {"enum": ["ini", "database"]}}},
    "GroupList": {"type": "object", "required": ["groups"], "properties": {
        "groups": {"type": "array", "items": _ref("Group")}}},
    "GroupCreate": {"type": "object", "required": ["name"], "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]{1,64}$"},
                        "members": {"type": "array", "items": {"type": "string"}}}},
    "GroupMembers": {"type": "object", "required": ["members"], "additionalProperties": False,
                     "properties": {"members": {"type": "array", "items": {"type": "string"}}}},
    "Grant": {"type": "object",
              "required": ["id", "repository", "pattern", "permission", "principal", "source"],
              "properties": {
                  "id": {"type": ["integer", "null"],
                         "description": "null for a grant of the ini."},
                  "repository": {"type": "string", "description": "A name, or * for all."},
                  "pattern": {"type": "string",
                              "description": "Project names (* and ? wildcards); * for "
                                             "the whole repository."},
                  "permission": {"enum": list(PERMISSIONS)},
                  "principal": {"type": "string",
                                "description": "everyone, authenticated, a user's name, or "
                                               "group:<name>."},
                  "source": {"enum": ["ini", "database"]}}},
    "GrantList": {"type": "object", "required": ["grants"], "properties": {
        "grants": {"type": "array", "items": _ref("Grant")}}},
    "GrantCreate": {"type": "object", "required": ["repository", "permission", "principal"],
                    "additionalProperties": False, "properties": {
                        "repository": {"type": "string"},
                        "pattern": {"type": "string", "default": "*"},
                        "permission": {"enum": list(PERMISSIONS)},
                        "principal": {"type": "string"}}},
    "Token": {"type": "object",
              "required": ["id", "user", "prefix", "permission", "repositories", "projects",
                           "created"],
              "properties": {
                  "id": {"type": "integer"}, "user": {"type": "string"},
                  "prefix": {"type": "string",
                             "description": "The secret's first characters, to tell "
                                            "tokens apart."},
                  "permission": {"enum": list(TOKEN_PERMISSIONS),
                                 "description": "upload includes read."},
                  "repositories": {"type": "array", "items": {"type": "string"}},
                  "projects": {"type": "array", "items": {"type": "string"}},
                  "note": {"type": ["string", "null"]},
                  "created": {"type": "string", "format": "date-time"},
                  "expires": WHEN, "last_used": {
                      **WHEN, "description": "Recorded at most once a minute."},
                  "revoked": WHEN}},
    "TokenList": {"type": "object", "required": ["tokens"], "properties": {
        "tokens": {"type": "array", "items": _ref("Token")}}},
    "TokenCreate": {"type": "object", "additionalProperties": False, "properties": {
        "user": {"type": "string", "description": "Whose token (admins only; default: "
                                                  "the caller's)."},
        "permission": {"enum": list(TOKEN_PERMISSIONS), "default": "read"},
        "repositories": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                         "default": ["*"]},
        "projects": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                     "default": ["*"], "description": "Project name patterns."},
        "expires": {**WHEN, "description": "ISO 8601, UTC unless it says otherwise."},
        "expires_in": {"type": ["string", "number", "null"],
                       "description": "A duration instead: 30d, 12h, or seconds."},
        "note": {"type": ["string", "null"], "maxLength": 1000}}},
    "TokenCreated": {"allOf": [_ref("Token"), {
        "type": "object", "required": ["token"], "properties": {
            "token": {"type": "string", "description": "The secret: shown this once. Use "
                      "it as the password, with the user name __token__."}}}]},
    "Owners": {"type": "object",
               "required": ["repository", "project", "owners", "owners_manage"],
               "properties": {
                   "repository": {"type": "string",
                                  "description": "The hosted repository that holds the "
                                                 "project (a group's member)."},
                   "project": {"type": "string", "description": "Its normalized name."},
                   "owners": {"type": "array", "items": {"type": "string"}},
                   "owners_manage": {"type": "boolean",
                                     "description": "Whether its owners may manage it "
                                                    "(repository.<name>.owners_manage)."}}},
    "OwnerAdd": {"type": "object", "required": ["user"], "additionalProperties": False,
                 "properties": {"user": {"type": "string",
                                         "description": "A user's name."}}},
    "ProjectGrant": {"allOf": [_ref("Grant"), {
        "type": "object", "required": ["applies"], "properties": {
            "applies": {"type": "boolean",
                        "description": "Whether it decides for the project: a project "
                                       "with grants of its own is governed by them alone "
                                       "(and the repository's admin grants)."}}}]},
    "ProjectGrants": {"type": "object",
                      "required": ["repository", "project", "own_grants", "grants"],
                      "properties": {
                          "repository": {"type": "string"}, "project": {"type": "string"},
                          "own_grants": {"type": "boolean",
                                         "description": "Whether grants whose pattern "
                                                        "matches the project decide for it "
                                                        "(then the repository-wide read, "
                                                        "upload and delete grants do not)."},
                          "grants": {"type": "array", "items": _ref("ProjectGrant"),
                                     "description": "Every grant whose pattern matches "
                                                    "the project."}}},
    "ProjectGrantCreate": {"type": "object", "required": ["principal", "permission"],
                           "additionalProperties": False, "properties": {
                               "permission": {"enum": list(PERMISSIONS)},
                               "principal": {"type": "string"}}},
    "TokenChange": {"type": "object", "additionalProperties": False, "properties": {
        "note": {"type": ["string", "null"], "maxLength": 1000},
        "expires": WHEN, "expires_in": {"type": ["string", "number", "null"]}}},
}

PATHS = {
    "/api/tokens": {
        "get": _op("listOwnTokens", "The caller's API tokens", "tokens",
                   ("200", _json(_ref("TokenList"), "The tokens.")), parameters=[REVOKED]),
        "post": _op("createToken", "Make an API token", "tokens",
                    ("201", _json(_ref("TokenCreated"), "The token, with its secret.")),
                    body="TokenCreate", errors=("400", "401", "403", "404", "415")),
    },
    "/api/tokens/{id}": {
        "get": _op("getToken", "One of the caller's tokens (an admin: anyone's)", "tokens",
                   ("200", _json(_ref("Token"), "The token.")),
                   errors=("401", "403", "404"), parameters=[ID]),
        "patch": _op("changeToken", "Change a token's note or expiry", "tokens",
                     ("200", _json(_ref("Token"), "The token.")), body="TokenChange",
                     errors=("400", "401", "403", "404", "409", "415"), parameters=[ID]),
        "delete": _op("revokeToken", "Revoke a token", "tokens", NO_CONTENT,
                      errors=("401", "403", "404"), parameters=[ID]),
    },
    "/api/admin/tokens": {
        "get": _op("listTokens", "Every user's API tokens", "admin",
                   ("200", _json(_ref("TokenList"), "The tokens.")),
                   errors=("401", "403"), parameters=[
                       _query_param("user", {"type": "string"}, "Only this user's."),
                       REVOKED]),
    },
    "/api/admin/users": {
        "get": _op("listUsers", "Every user", "admin",
                   ("200", _json(_ref("UserList"), "The users.")), errors=("401", "403")),
        "post": _op("createUser", "Add a user", "admin",
                    ("201", _json(_ref("User"), "The user.")), body="UserCreate",
                    errors=("400", "401", "403", "409", "415")),
    },
    "/api/admin/users/{name}": {
        "get": _op("getUser", "A user", "admin", ("200", _json(_ref("User"), "The user.")),
                   errors=("401", "403", "404"), parameters=[USER]),
        "patch": _op("changeUser", "Change a user's password or admin flag", "admin",
                     ("200", _json(_ref("User"), "The user.")), body="UserChange",
                     errors=("400", "401", "403", "404", "409", "415"), parameters=[USER]),
        "delete": _op("deleteUser", "Remove a user (their tokens are revoked)", "admin",
                      NO_CONTENT, errors=("401", "403", "404", "409"), parameters=[USER]),
    },
    "/api/admin/groups": {
        "get": _op("listGroups", "Every group", "admin",
                   ("200", _json(_ref("GroupList"), "The groups.")), errors=("401", "403")),
        "post": _op("createGroup", "Add a group", "admin",
                    ("201", _json(_ref("Group"), "The group.")), body="GroupCreate",
                    errors=("400", "401", "403", "409", "415")),
    },
    "/api/admin/groups/{name}": {
        "get": _op("getGroup", "A group", "admin", ("200", _json(_ref("Group"), "The group.")),
                   errors=("401", "403", "404"), parameters=[GROUP]),
        "put": _op("setGroupMembers", "Set a group's members (made if new)", "admin",
                   ("200", _json(_ref("Group"), "The group.")), body="GroupMembers",
                   errors=("400", "401", "403", "409", "415"), parameters=[GROUP]),
        "delete": _op("deleteGroup", "Remove a group and its grants", "admin", NO_CONTENT,
                      errors=("401", "403", "404", "409"), parameters=[GROUP]),
    },
    "/api/admin/grants": {
        "get": _op("listGrants", "Every grant, the ini's and the database's", "admin",
                   ("200", _json(_ref("GrantList"), "The grants.")), errors=("401", "403")),
        "post": _op("createGrant", "Grant a permission", "admin",
                    ("201", _json(_ref("Grant"), "The grant.")), body="GrantCreate",
                    errors=("400", "401", "403", "409", "415")),
    },
    "/api/admin/grants/{id}": {
        "get": _op("getGrant", "A grant of the database", "admin",
                   ("200", _json(_ref("Grant"), "The grant.")),
                   errors=("401", "403", "404", "409"), parameters=[ID]),
        "delete": _op("deleteGrant", "Revoke a grant of the database", "admin", NO_CONTENT,
                      errors=("401", "403", "404", "409"), parameters=[ID]),
    },
    **_project_paths("/api/r/{repo}", [REPOSITORY]),
    **_project_paths("/api", [], " of the default repository"),
    "/api/openapi.json": {
        "get": {"operationId": "openapi", "summary": "This document", "tags": ["meta"],
                "security": [], "responses": {"200": {
                    "description": "The OpenAPI document.",
                    "content": {JSON: {"schema": {"type": "object"}}}}}},
    },
}

DESCRIPTION = """\
Users, groups, grants and API tokens of a pypirepo server.

Log in with Basic auth and your password. `/api/tokens` is every user's own; the
`/api/admin/` URLs are for server admins. An API token cannot be used here (it could
otherwise make itself a broader one). Users, groups and grants can be changed only with
`auth.backend = sql`; with `config` the ini holds them (they are listed, and a change is a
409). A project's owners and grants (`.../projects/{project}/owners|grants`) are managed
by its owners (unless `repository.<name>.owners_manage = false`), the repository's admins
and server admins; its owners with either backend. Writes take `Content-Type: application/json`. Errors carry their reason in the
status line and the body, as JSON when the request's `Accept` prefers it.
"""


def document(request=None) -> dict:
    """The document; `servers` is where this server's API is (its public URL when set,
    else its path prefix), so a client reads it from any copy."""
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "pypirepo access API", "version": "1", "description": DESCRIPTION},
        "security": [{"basic": []}],
        "tags": [{"name": "tokens", "description": "A user's own API tokens."},
                 {"name": "admin", "description": "For server admins."},
                 {"name": "projects", "description": "A project's owners and its own "
                                                     "grants: for its owners and admins."},
                 {"name": "meta", "description": "This document."}],
        "paths": PATHS,
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "basic": {"type": "http", "scheme": "basic",
                      "description": "A user's name and password."}}},
    }
    if request is not None:
        base = request.app_config.public_url or request.script_name
        if base:
            doc["servers"] = [{"url": base}]
    return doc
