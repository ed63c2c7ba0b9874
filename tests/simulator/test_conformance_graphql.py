"""The simulator's `/api/graphql` driven by python-gitlab's `gitlab.GraphQL` (on gql), a
client nobody here wrote: if it reads the simulator as it reads GitLab, the simulator
speaks GitLab's GraphQL for what the monitor asks."""

import gitlab
import httpx
import pytest
from gql.transport.exceptions import TransportQueryError

from bot.simulator import GitLabSimulator
from bot.simulator.rate_limits import RateLimit
from tests.conftest import ALICE_TOKEN, DAVE_TOKEN, SampleGitLab

# python-gitlab hands gql its variables the older way, which gql now warns about.
pytestmark = pytest.mark.filterwarnings("ignore:Using variable_values:DeprecationWarning")

IMPORT_STATES = """
query importStates($ids: [ID!], $first: Int, $after: String) {
  projects(ids: $ids, first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      fullPath
      importStatus
      detailedImportStatus {
        id status url lastError lastUpdateAt lastUpdateStartedAt lastSuccessfulUpdateAt
      }
    }
  }
}
"""


def graphql(gitlab_sim: GitLabSimulator, token: str = ALICE_TOKEN) -> gitlab.GraphQL:
    return gitlab.GraphQL(gitlab_sim.url, token=token)


def gid(project) -> str:
    return f"gid://gitlab/Project/{project.id}"


def test_import_states_of_projects_by_global_id(sample: SampleGitLab, gitlab_sim):
    world = sample.world
    pull = world.set_pull_mirror(
        sample.app, "https://u:hunter2@upstream.example.org/app.git", enabled=True
    )
    pull.update_status, pull.last_error = "failed", "fatal: could not read from remote repository"
    plain = world.add_project("group/plain", {sample.alice: 40})
    with graphql(gitlab_sim) as client:
        answer = client.execute(
            IMPORT_STATES, variable_values={"ids": [gid(sample.app), gid(plain)]}
        )
    nodes = {node["fullPath"]: node for node in answer["projects"]["nodes"]}
    assert set(nodes) == {"group/app", "group/plain"}
    state = nodes["group/app"]["detailedImportStatus"]
    assert state["id"] == f"gid://gitlab/ProjectImportState/{pull.id}"
    assert state["status"] == "failed" == nodes["group/app"]["importStatus"]
    assert state["lastError"] == "fatal: could not read from remote repository"
    assert "hunter2" not in state["url"] and state["url"].endswith("upstream.example.org/app.git")
    assert nodes["group/plain"]["detailedImportStatus"] is None
    assert nodes["group/plain"]["importStatus"] == "none"
    assert answer["projects"]["pageInfo"]["hasNextPage"] is False
    assert [(r.method, r.path, r.status) for r in gitlab_sim.requests.entries] == [
        ("POST", "/api/graphql", 200)
    ]


def test_projects_the_token_cannot_read_are_absent_and_errors_need_maintainer(
    sample: SampleGitLab, gitlab_sim
):
    world = sample.world
    pull = world.set_pull_mirror(sample.app, "https://upstream.example.org/app.git", enabled=True)
    pull.update_status, pull.last_error = "failed", "fatal: no"
    secret = next(p for p in world.projects.values() if p.path == "group/secret")
    with graphql(gitlab_sim, DAVE_TOKEN) as client:  # dave is a Developer of group/app
        answer = client.execute(
            IMPORT_STATES, variable_values={"ids": [gid(sample.app), gid(secret)]}
        )
    (node,) = answer["projects"]["nodes"]
    assert node["fullPath"] == "group/app"
    assert node["detailedImportStatus"]["status"] == "failed"
    assert node["detailedImportStatus"]["lastError"] is None


def test_pages_hold_at_most_100_projects_and_follow_the_cursor(sample: SampleGitLab, gitlab_sim):
    world = sample.world
    for n in range(130):
        world.add_project(f"many/p{n}", {sample.alice: 40})
    seen: list[str] = []
    after = None
    pages = 0
    with graphql(gitlab_sim) as client:
        while True:
            answer = client.execute(IMPORT_STATES, variable_values={"first": 500, "after": after})
            page = answer["projects"]
            assert len(page["nodes"]) <= 100
            seen += [node["fullPath"] for node in page["nodes"]]
            pages += 1
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
    assert pages == 2
    assert len(seen) == len(set(seen)) == 131  # group/app and the 130 (not group/secret)


def test_more_than_50_full_paths_is_an_error(sample: SampleGitLab, gitlab_sim):
    query = "query($paths: [String!]) { projects(fullPaths: $paths) { nodes { id } } }"
    with graphql(gitlab_sim) as client, pytest.raises(TransportQueryError) as error:
        client.execute(query, variable_values={"paths": [f"g/p{n}" for n in range(51)]})
    assert "fullPaths" in str(error.value)


def test_over_the_complexity_limit_gitlab_answers_with_an_error(sample: SampleGitLab, gitlab_sim):
    # 40 aliased pages of 100 projects: each costs about 8, doubled by its page size.
    pages = " ".join(f"p{n}: projects(first: 100) {{ nodes {{ id fullPath }} }}" for n in range(40))
    with graphql(gitlab_sim) as client, pytest.raises(TransportQueryError) as error:
        client.execute(f"query {{ {pages} }}")
    assert "exceeds max complexity of 250" in str(error.value)
    assert [r.status for r in gitlab_sim.requests.entries] == [200]


def test_a_query_over_10000_characters_is_too_large(sample: SampleGitLab, gitlab_sim):
    # gql sends the query as it prints it (comments dropped): a long alias makes it long.
    query = "query { " + "a" * 10_000 + ": projects(first: 1) { nodes { id } } }"
    with graphql(gitlab_sim) as client, pytest.raises(TransportQueryError) as error:
        client.execute(query)
    assert "Query too large" in str(error.value)


def test_a_rejected_token_is_refused_as_by_the_rest_api(sample: SampleGitLab, gitlab_sim):
    with graphql(gitlab_sim, "glpat-nobody") as client:
        with pytest.raises(gitlab.exceptions.GitlabAuthenticationError):
            client.execute("query { projects { nodes { id } } }")


def test_graphql_requests_count_against_the_rate_limit_as_rest_ones(sample, gitlab_sim):
    gitlab_sim.rate_limit = RateLimit(limit=2)
    headers = {"PRIVATE-TOKEN": ALICE_TOKEN}
    query = {"query": "query { projects { nodes { id } } }"}
    rest = httpx.get(f"{gitlab_sim.url}/api/v4/user", headers=headers)
    first = httpx.post(f"{gitlab_sim.url}/api/graphql", json=query, headers=headers)
    second = httpx.post(f"{gitlab_sim.url}/api/graphql", json=query, headers=headers)
    assert (rest.status_code, first.status_code, second.status_code) == (200, 200, 429)
    assert first.headers["RateLimit-Remaining"] == "0"
    assert [(r.path, r.status) for r in gitlab_sim.requests.entries] == [
        ("/user", 200),
        ("/api/graphql", 200),
        ("/api/graphql", 429),
    ]
