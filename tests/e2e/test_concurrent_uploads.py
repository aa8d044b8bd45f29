"""Uploads at the same moment, as a CI matrix and client retries send them, to a real
server on SQLite and on PostgreSQL: only a real conflict is a 409, it has exactly one
winner, and afterwards the stored bytes, the record and the row agree."""

from __future__ import annotations

import hashlib
import json
import threading

import pytest
import requests
from distfactory import make_wheel, upload_fields

pytestmark = pytest.mark.e2e

ROUNDS = 3


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def live(request, server):
    if request.param == "postgresql":
        server.app["sqlalchemy.url"] = request.getfixturevalue("pg_url")
    return server.start()


def post_at_once(server, jobs) -> list[requests.Response]:
    """Post every (path, name, version, filename) at the same instant, one thread each."""
    barrier = threading.Barrier(len(jobs))
    answers: list = [None] * len(jobs)

    def post(i, path, name, version, filename):
        fields, data = upload_fields(path, name, version), path.read_bytes()
        with requests.Session() as s:
            barrier.wait()
            answers[i] = s.post(server.url + "/legacy/", auth=server.auth, data=fields,
                                files={"content": (filename, data)}, timeout=60)

    threads = [threading.Thread(target=post, args=(i, *job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def check_consistent(server, project: str) -> dict:
    """Every listed file: its download, its record in storage and its row (the JSON
    API) agree; storage holds nothing else for the project. Returns filename -> sha256."""
    data = requests.get(f"{server.url}/pypi/{project}/json").json()
    rows = {f["filename"]: f for files in data["releases"].values() for f in files}
    folder = server.storage_dir / "packages" / project
    for filename, row in rows.items():
        body = requests.get(f"{server.url}/packages/{project}/{filename}").content
        record = json.loads((folder / (filename + ".json")).read_bytes())
        assert hashlib.sha256(body).hexdigest() == row["digests"]["sha256"] == \
            record["sha256"], filename
        assert record["size"] == row["size"] == len(body)
    expected = {name for f in rows for name in (f, f + ".json", f + ".metadata")}
    assert {p.name for p in folder.iterdir()} == expected
    return {f: row["digests"]["sha256"] for f, row in rows.items()}


def test_a_matrix_publishing_a_new_project_gets_no_409(live, tmp_path):
    for n in range(ROUNDS):
        project = f"matrix{n}"
        wheels = [make_wheel(tmp_path / project, project, "1.0",
                             tag=f"cp3{i}-cp3{i}-manylinux_2_17_x86_64") for i in range(8)]
        answers = post_at_once(live, [(w, project, "1.0", w.name) for w in wheels])
        assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
        assert sorted(check_consistent(live, project)) == sorted(w.name for w in wheels)


@pytest.mark.parametrize("existing", [False, True], ids=["new-project", "existing-project"])
def test_identical_uploads_at_once_all_succeed(live, tmp_path, existing):
    for n in range(ROUNDS):
        project = f"retry{n}"
        if existing:
            live.upload(make_wheel(tmp_path / "first", project, "0.1"), project, "0.1")
        wheel = make_wheel(tmp_path / project, project, "1.0")
        answers = post_at_once(live, [(wheel, project, "1.0", wheel.name)] * 10)
        assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers]
        stored = check_consistent(live, project)
        assert stored[wheel.name] == hashlib.sha256(wheel.read_bytes()).hexdigest()


def test_a_real_conflict_has_one_winner_and_a_true_message(live, tmp_path):
    """Same distribution, different bytes, spelled two ways (names.filename_key)."""
    for n in range(ROUNDS):
        project = f"clash{n}"
        jobs = []
        for i in range(8):
            wheel = make_wheel(tmp_path / project / str(i), project, "1.0",
                               module_source=f"x = {i}\n")
            spelling = wheel.name if i % 2 else wheel.name.replace("clash", "Clash", 1)
            jobs.append((wheel, project, "1.0", spelling))
        answers = post_at_once(live, jobs)
        won = [i for i, a in enumerate(answers) if a.status_code == 200]
        assert len(won) == 1, [a.text for a in answers]
        assert {a.status_code for i, a in enumerate(answers) if i != won[0]} == {409}
        winner = jobs[won[0]]
        winner_sha = hashlib.sha256(winner[0].read_bytes()).hexdigest()
        for i, a in enumerate(answers):
            if i != won[0]:
                assert a.reason.startswith("File already exists")
                assert winner_sha in a.text and repr(winner[3]) in a.text, a.text
        assert check_consistent(live, project) == {winner[3]: winner_sha}
