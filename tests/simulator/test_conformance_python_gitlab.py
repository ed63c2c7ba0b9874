"""The simulator driven by python-gitlab, a client nobody here wrote: if it works against
the simulator as it does against GitLab, the simulator speaks GitLab's API."""

import gitlab
import pytest

from bot.simulator import GitLabSimulator
from tests.conftest import ALICE_TOKEN, DAVE_TOKEN, SampleGitLab


@pytest.fixture
def gl(gitlab_sim: GitLabSimulator) -> gitlab.Gitlab:
    return gitlab.Gitlab(gitlab_sim.url, private_token=ALICE_TOKEN, retry_transient_errors=True)


def test_push_mirror_lifecycle(gl: gitlab.Gitlab, sample: SampleGitLab, gitlab_sim):
    project = gl.projects.get("group/app", lazy=True)
    assert len(project.remote_mirrors.list()) == 2

    mirror = project.remote_mirrors.create({"url": "https://backup.example.org/app.git"})
    assert mirror.url == "https://backup.example.org/app.git"
    assert mirror.enabled is False

    mirror.enabled = True
    mirror.save()
    assert [m.enabled for m in project.remote_mirrors.list() if m.id == mirror.id] == [True]

    response = mirror.sync()
    assert response.status_code == 204

    mirror.delete()
    assert mirror.id not in [m.id for m in project.remote_mirrors.list()]
    methods = [(r.method, r.status) for r in gitlab_sim.requests.entries]
    assert ("POST", 201) in methods and ("PUT", 200) in methods and ("DELETE", 204) in methods


def test_get_one_mirror_and_its_public_key_with_raw_calls(gl: gitlab.Gitlab, sample):
    # python-gitlab has no helpers for these two endpoints; its http_get reaches them.
    mirror = gl.http_get(f"/projects/group%2Fapp/remote_mirrors/{sample.ssh_mirror.id}")
    assert mirror["auth_method"] == "ssh_public_key"
    key = gl.http_get(f"/projects/group%2Fapp/remote_mirrors/{sample.ssh_mirror.id}/public_key")
    assert key["public_key"].startswith("ssh-")


def test_pull_mirror_get_configure_start(gl: gitlab.Gitlab):
    project = gl.projects.get("group/app", lazy=True)
    with pytest.raises(gitlab.exceptions.GitlabGetError) as error:
        project.pull_mirror.get()
    assert error.value.response_code == 400
    assert "not mirrored" in str(error.value.error_message)

    project.pull_mirror.create(
        {
            "url": "https://upstream.example.org/app.git",
            "enabled": True,
            "auth_user": "u",
            "auth_password": "p",
        }
    )
    pull = project.pull_mirror.get()
    assert pull.enabled is True
    assert pull.url == "https://*****:*****@upstream.example.org/app.git"

    pull.mirror_trigger_builds = True
    pull.save()
    assert project.pull_mirror.get().mirror_trigger_builds is True

    project.pull_mirror.start()


def test_role_and_token_errors_as_python_gitlab_sees_them(gitlab_sim: GitLabSimulator):
    developer = gitlab.Gitlab(gitlab_sim.url, private_token=DAVE_TOKEN)
    # GitLab answers 401 (not 403) to a Developer on remote_mirrors; python-gitlab agrees.
    with pytest.raises(gitlab.exceptions.GitlabAuthenticationError) as error:
        developer.projects.get("group/app", lazy=True).remote_mirrors.list()
    assert error.value.response_code == 401
    developer.auth()  # while the token itself is fine

    stranger = gitlab.Gitlab(gitlab_sim.url, private_token="nope")
    with pytest.raises(gitlab.exceptions.GitlabAuthenticationError):
        stranger.auth()


def test_pagination_headers_are_followed_by_python_gitlab(gl: gitlab.Gitlab, sample):
    for n in range(45):
        sample.world.add_push_mirror(sample.app, f"https://h{n}.example.org/x.git")
    mirrors = gl.projects.get("group/app", lazy=True).remote_mirrors.list(get_all=True, per_page=20)
    assert len(mirrors) == 47
