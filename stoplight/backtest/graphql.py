"""A repository's recent pull requests with their timelines, through GitHub's GraphQL API.

One request reads a page of PRs (50 by default) with up to 100 timeline items each, so a
thousand PRs cost about twenty requests; only a PR with more items costs more, a request per
further hundred. PRs come newest-updated first and reading stops at the first one last
updated before the window: older ones cannot have been open in it, unless still open, and
those come from a second, short listing of open PRs, oldest-updated first.

Each page's PRs are appended to a file before its cursor is kept beside them, so a run cut
short (an error, a limit, Ctrl-C) resumes at the page it had not finished. GitHub's limits
are kept: a throttled request waits for the moment GitHub names (the same reading of its
answers as the app's writes use) and is tried again, and a run whose points run low waits
for the reset.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from github import GithubException
from github.Requester import Requester

from stoplight.clients.github import throttled_until
from stoplight.core.clock import Clock, parse_github_time

log = logging.getLogger(__name__)

PAGE_SIZE = 50
TIMELINE_PAGE = 100
# Points kept in hand: below this, wait for the reset rather than be refused.
POINTS_RESERVE = 50
# A throttled request is tried again this many times before the run stops (resumable).
THROTTLE_RETRIES = 5

TIMELINE_TYPES = (
    "READY_FOR_REVIEW_EVENT",
    "CONVERT_TO_DRAFT_EVENT",
    "PULL_REQUEST_COMMIT",
    "HEAD_REF_FORCE_PUSHED_EVENT",
    "PULL_REQUEST_REVIEW",
    "REVIEW_DISMISSED_EVENT",
    "REVIEW_REQUESTED_EVENT",
    "REVIEW_REQUEST_REMOVED_EVENT",
    "CLOSED_EVENT",
    "MERGED_EVENT",
    "REOPENED_EVENT",
    "LABELED_EVENT",
    "UNLABELED_EVENT",
)

_ACTOR = "{ login __typename }"
_REVIEWER = "{ ... on User { login } ... on Bot { login } ... on Mannequin { login } }"
TIMELINE_FIELDS = f"""
pageInfo {{ hasNextPage endCursor }}
nodes {{
  __typename
  ... on ReadyForReviewEvent {{ createdAt }}
  ... on ConvertToDraftEvent {{ createdAt }}
  ... on PullRequestCommit {{ commit {{ oid committedDate }} }}
  ... on HeadRefForcePushedEvent {{ createdAt afterCommit {{ oid }} }}
  ... on PullRequestReview {{ id author {_ACTOR} state submittedAt commit {{ oid }} }}
  ... on ReviewDismissedEvent {{ createdAt previousReviewState review {{ id author {_ACTOR} }} }}
  ... on ReviewRequestedEvent {{ createdAt requestedReviewer {_REVIEWER} }}
  ... on ReviewRequestRemovedEvent {{ createdAt requestedReviewer {_REVIEWER} }}
  ... on ClosedEvent {{ createdAt }}
  ... on MergedEvent {{ createdAt }}
  ... on ReopenedEvent {{ createdAt }}
  ... on LabeledEvent {{ createdAt label {{ name }} }}
  ... on UnlabeledEvent {{ createdAt label {{ name }} }}
}}
"""
_TIMELINE_ARGS = f"itemTypes: [{', '.join(TIMELINE_TYPES)}]"

PULLS_QUERY = f"""
query($owner: String!, $name: String!, $first: Int!, $after: String,
      $states: [PullRequestState!], $direction: OrderDirection!) {{
  rateLimit {{ cost remaining resetAt }}
  repository(owner: $owner, name: $name) {{
    databaseId
    pullRequests(first: $first, after: $after, states: $states,
                 orderBy: {{field: UPDATED_AT, direction: $direction}}) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{
        id number title url createdAt updatedAt isDraft additions deletions headRefOid
        author {_ACTOR}
        timelineItems(first: {TIMELINE_PAGE}, {_TIMELINE_ARGS}) {{ {TIMELINE_FIELDS} }}
      }}
    }}
  }}
}}
"""

TIMELINE_QUERY = f"""
query($id: ID!, $after: String) {{
  rateLimit {{ cost remaining resetAt }}
  node(id: $id) {{
    ... on PullRequest {{
      timelineItems(first: {TIMELINE_PAGE}, after: $after, {_TIMELINE_ARGS}) {{
        {TIMELINE_FIELDS}
      }}
    }}
  }}
}}
"""

# The two listings, in order: recent PRs of every state, then PRs open since before the window.
RECENT, STILL_OPEN, DONE = "recent", "open", "done"


@dataclass
class Progress:
    """Where a repository's reading stands, kept in a file beside the PRs read so far."""

    cutoff: datetime
    phase: str = RECENT
    cursor: str | None = None
    repository_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "phase": self.phase,
            "cursor": self.cursor,
            "repository_id": self.repository_id,
        }


class PullStore:
    """The PRs read of one repository (JSON lines) and the progress (JSON), in a directory."""

    def __init__(self, directory: Path, repo: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        stem = repo.replace("/", "+")
        self.pulls_path = directory / f"{stem}.pulls.jsonl"
        self.progress_path = directory / f"{stem}.progress.json"

    def resume_or_start(self, cutoff: datetime) -> Progress:
        """An unfinished reading's progress (with its own cutoff), else a fresh start."""
        if self.progress_path.exists():
            kept = json.loads(self.progress_path.read_text())
            if kept["phase"] != DONE:
                moment = parse_github_time(kept["cutoff"])
                assert moment is not None
                return Progress(moment, kept["phase"], kept["cursor"], kept["repository_id"])
        self.pulls_path.write_text("")
        progress = Progress(cutoff)
        self.keep(progress)
        return progress

    def add(self, nodes: list[dict[str, Any]]) -> None:
        with self.pulls_path.open("a", encoding="utf-8") as handle:
            for node in nodes:
                handle.write(json.dumps(node, separators=(",", ":")) + "\n")

    def keep(self, progress: Progress) -> None:
        # Written whole, then renamed: a run killed mid-write leaves the previous progress.
        partial = self.progress_path.with_suffix(".partial")
        partial.write_text(json.dumps(progress.as_json()))
        partial.replace(self.progress_path)

    def pulls(self) -> list[dict[str, Any]]:
        """Every PR read, once each (a page read twice after a crash counts once)."""
        by_number: dict[int, dict[str, Any]] = {}
        with self.pulls_path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    node = json.loads(line)
                    by_number[node["number"]] = node
        return [by_number[number] for number in sorted(by_number)]


class GraphQLReader:
    """Sends queries through a PyGithub requester, keeping within GitHub's limits."""

    def __init__(
        self,
        requester: Requester,
        clock: Clock,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.requester = requester
        self.clock = clock
        self.sleep = sleep
        self.requests = 0

    def query(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        for _ in range(THROTTLE_RETRIES):
            try:
                self.requests += 1
                _, answer = self.requester.graphql_query(query, variables)
            except GithubException as error:
                until = throttled_until(error, self.clock.now())
                if until is None:
                    raise
                log.warning("GitHub asks for a pause until %s", until.isoformat())
                self._wait_until(until)
                continue
            data: dict[str, Any] = answer["data"]
            self._spare_points(data.get("rateLimit"))
            return data
        raise RuntimeError("GitHub kept throttling the reads; run the backtest again to resume")

    def _spare_points(self, limit: dict[str, Any] | None) -> None:
        if limit and limit["remaining"] < max(POINTS_RESERVE, 2 * limit["cost"]):
            reset = parse_github_time(limit["resetAt"])
            if reset is not None:
                log.warning(
                    "GraphQL points low (%s left): waiting for the reset", limit["remaining"]
                )
                self._wait_until(reset)

    def _wait_until(self, until: datetime) -> None:
        self.sleep(max((until - self.clock.now()).total_seconds(), 0.0))


def read_pulls(
    reader: GraphQLReader,
    repo: str,
    store: PullStore,
    cutoff: datetime,
    *,
    page_size: int = PAGE_SIZE,
    advance: Callable[[int], object] = lambda count: None,
) -> tuple[int, list[dict[str, Any]]]:
    """The repository's id and every PR that may have been open since `cutoff`, each with
    its whole timeline; `advance` is told how many PRs each page brought."""
    owner, _, name = repo.partition("/")
    progress = store.resume_or_start(cutoff)
    while progress.phase != DONE:
        recent = progress.phase == RECENT
        data = reader.query(
            PULLS_QUERY,
            {
                "owner": owner,
                "name": name,
                "first": page_size,
                "after": progress.cursor,
                "states": None if recent else ["OPEN"],
                "direction": "DESC" if recent else "ASC",
            },
        )
        repository = data["repository"]
        listing = repository["pullRequests"]
        nodes, finished = _in_window(listing["nodes"], progress.cutoff, recent=recent)
        for node in nodes:
            _complete_timeline(reader, node)
        store.add(nodes)
        advance(len(nodes))
        progress.repository_id = repository["databaseId"]
        if finished or not listing["pageInfo"]["hasNextPage"]:
            progress.phase, progress.cursor = (STILL_OPEN if recent else DONE), None
        else:
            progress.cursor = listing["pageInfo"]["endCursor"]
        store.keep(progress)
    assert progress.repository_id is not None
    return progress.repository_id, store.pulls()


def _in_window(
    nodes: list[dict[str, Any]], cutoff: datetime, *, recent: bool
) -> tuple[list[dict[str, Any]], bool]:
    """The page's PRs that belong to the reading, and whether the listing ends here."""
    kept: list[dict[str, Any]] = []
    for node in nodes:
        updated = parse_github_time(node["updatedAt"])
        assert updated is not None
        # Recent: newest first, so the first one older than the window ends it. Open: oldest
        # first, so the first one inside the window was read already, as were all after it.
        if (updated < cutoff) is recent:
            return kept, True
        kept.append(node)
    return kept, False


def _complete_timeline(reader: GraphQLReader, node: dict[str, Any]) -> None:
    """Read the rest of a timeline longer than one page."""
    timeline = node["timelineItems"]
    while timeline["pageInfo"]["hasNextPage"]:
        data = reader.query(
            TIMELINE_QUERY, {"id": node["id"], "after": timeline["pageInfo"]["endCursor"]}
        )
        more = data["node"]["timelineItems"]
        timeline["nodes"].extend(more["nodes"])
        timeline["pageInfo"] = more["pageInfo"]
