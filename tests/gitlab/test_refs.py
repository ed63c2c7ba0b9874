import pytest

from bot.gitlab.refs import ProjectRefError, parse_project_ref

GITLAB = "https://gitlab.example.com"


@pytest.mark.parametrize(
    ("text", "value", "api_id"),
    [
        ("42", "42", "42"),
        ("  007 ", "7", "7"),
        ("group/project", "group/project", "group%2Fproject"),
        ("group/sub/project", "group/sub/project", "group%2Fsub%2Fproject"),
        ("/group/project/", "group/project", "group%2Fproject"),
        ("group/my.project-2", "group/my.project-2", "group%2Fmy.project-2"),
        (
            "https://gitlab.example.com/group/sub/project",
            "group/sub/project",
            "group%2Fsub%2Fproject",
        ),
        ("https://gitlab.example.com/group/project.git", "group/project", "group%2Fproject"),
        (
            "https://gitlab.example.com/group/project/-/settings/repository",
            "group/project",
            "group%2Fproject",
        ),
        (
            "https://gitlab.example.com/group/project/-/tree/main?ref_type=heads",
            "group/project",
            "group%2Fproject",
        ),
        ("<https://gitlab.example.com/group/project>", "group/project", "group%2Fproject"),
        (
            "<https://gitlab.example.com/group/project|group/project>",
            "group/project",
            "group%2Fproject",
        ),
        (
            "git@gitlab.example.com:group/sub/project.git",
            "group/sub/project",
            "group%2Fsub%2Fproject",
        ),
        ("ssh://git@gitlab.example.com/group/project.git", "group/project", "group%2Fproject"),
    ],
)
def test_project_references_people_type_are_understood(text: str, value: str, api_id: str):
    ref = parse_project_ref(text, GITLAB)
    assert ref.value == value
    assert ref.api_id == api_id


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("project", "full path"),
        ("0", "start at 1"),
        ("group/pro ject", "not a valid path segment"),
        ("group/../etc", "not a valid path segment"),
        ("https://github.com/group/project", "not on gitlab.example.com"),
        ("ftp://gitlab.example.com/group/project", "only http(s) and ssh"),
        ("https://gitlab.example.com/", "full path"),
        ("x" * 2000, "too long"),
        ("группа/проект", "not a valid path segment"),
    ],
)
def test_anything_else_is_a_clear_error(text: str, reason: str):
    with pytest.raises(ProjectRefError) as error:
        parse_project_ref(text, GITLAB)
    assert reason in str(error.value)
    assert "is not a GitLab project" in str(error.value)


def test_gitlab_under_a_relative_url_root():
    ref = parse_project_ref(
        "https://example.com/gitlab/group/project", "https://example.com/gitlab"
    )
    assert ref.value == "group/project"


def test_without_a_configured_host_any_host_is_accepted():
    assert parse_project_ref("https://other.example/group/project").value == "group/project"


def test_a_bad_reference_never_echoes_a_pasted_token():
    with pytest.raises(ProjectRefError) as error:
        parse_project_ref("https://bot:glpat-abcdefgh12345678@github.com/group/project", GITLAB)
    assert "glpat-abcdefgh12345678" not in str(error.value)
    assert "bot:" not in str(error.value)
