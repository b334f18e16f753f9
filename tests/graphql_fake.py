"""GitHub's GraphQL endpoint as `responses` fakes it for the backtest's reads: pages of a
repository's PRs by update time, with cursors, and the rest of a long timeline."""

from __future__ import annotations

import json
import re
from typing import Any

import responses

from stoplight.core.clock import parse_github_time

# PyGithub names the port in the GraphQL URL.
GRAPHQL = re.compile(re.escape("https://api.github.com") + "(?::443)?/graphql")


class FakeGraphQL:
    def __init__(self, mock: responses.RequestsMock, repos: dict[str, tuple[int, list[dict]]]):
        """`repos`: owner/name -> (database id, PR nodes with their whole timelines)."""
        self.repos = repos
        self.queries: list[dict[str, Any]] = []  # the variables of each query, in order
        # query number (from 0) -> the error answered instead
        self.failures: dict[int, tuple[int, dict[str, str], dict[str, Any]]] = {}
        self.timeline_page = 100
        self.points_left = 4999
        self.reset_at = "2030-01-01T00:00:00Z"
        mock.add_callback(responses.POST, GRAPHQL, self._answer)

    def fail(
        self, query: int, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        """Answer the `query`-th query (from 0) with an error."""
        self.failures[query] = (status, headers or {}, body)

    def _answer(self, request: Any) -> tuple[int, dict[str, str], str]:
        sent = json.loads(request.body)
        variables = sent["variables"]
        self.queries.append(variables)
        failure = self.failures.pop(len(self.queries) - 1, None)
        if failure is not None:
            status, headers, body = failure
            return status, headers, json.dumps(body)
        if "id" in variables:
            data = {"node": {"timelineItems": self._timeline(variables)}}
        else:
            data = {"repository": self._pulls(variables)}
        data["rateLimit"] = {"cost": 1, "remaining": self.points_left, "resetAt": self.reset_at}
        return 200, {}, json.dumps({"data": data})

    def _pulls(self, variables: dict[str, Any]) -> dict[str, Any]:
        database_id, nodes = self.repos[f"{variables['owner']}/{variables['name']}"]
        if variables["states"] == ["OPEN"]:
            nodes = [node for node in nodes if not _closed(node)]
        ordered = sorted(
            nodes, key=lambda node: _updated(node), reverse=variables["direction"] == "DESC"
        )
        start = int(variables["after"] or 0)
        page = ordered[start : start + variables["first"]]
        end = start + len(page)
        return {
            "databaseId": database_id,
            "pullRequests": {
                "pageInfo": {"hasNextPage": end < len(ordered), "endCursor": str(end)},
                "nodes": [self._first_timeline_page(node) for node in page],
            },
        }

    def _first_timeline_page(self, node: dict[str, Any]) -> dict[str, Any]:
        items = node["timelineItems"]["nodes"]
        first = items[: self.timeline_page]
        more = len(items) > self.timeline_page
        timeline = {
            "pageInfo": {"hasNextPage": more, "endCursor": str(len(first))},
            "nodes": first,
        }
        return {**node, "timelineItems": timeline}

    def _timeline(self, variables: dict[str, Any]) -> dict[str, Any]:
        node = next(
            node
            for _, nodes in self.repos.values()
            for node in nodes
            if node["id"] == variables["id"]
        )
        items = node["timelineItems"]["nodes"]
        start = int(variables["after"])
        page = items[start : start + self.timeline_page]
        end = start + len(page)
        return {"pageInfo": {"hasNextPage": end < len(items), "endCursor": str(end)}, "nodes": page}


def _updated(node: dict[str, Any]) -> Any:
    return parse_github_time(node["updatedAt"])


def _closed(node: dict[str, Any]) -> bool:
    kinds = {item["__typename"] for item in node["timelineItems"]["nodes"]}
    return bool(kinds & {"ClosedEvent", "MergedEvent"})
