"""The GitHub-backed history: an installation's repositories read through GraphQL and turned
back into deliveries, with a progress bar while it reads."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from stoplight.backtest.graphql import PAGE_SIZE, GraphQLReader, PullStore, read_pulls
from stoplight.backtest.history import Recorded
from stoplight.backtest.rebuild import RepositoryRef, deliveries_of
from stoplight.clients.github import InstallationClient


def installation_repositories(client: InstallationClient) -> list[str]:
    """Every repository the installation may read, by full name."""
    listing = client.read_pages(
        "/installation/repositories", {"per_page": 100}, item_key="repositories"
    )
    return sorted(repo["full_name"] for repo in listing.items or [])


def github_history(
    client: InstallationClient,
    repos: Sequence[str],
    cutoff: datetime,
    directory: Path,
    *,
    console: Console | None = None,
    page_size: int = PAGE_SIZE,
) -> tuple[list[Recorded], int]:
    """The deliveries of every PR that may have been open since `cutoff`, in time order,
    and the number of GraphQL requests it took."""
    reader = GraphQLReader(client.github().requester, client.app.clock, client.app.sleep)
    found: list[Recorded] = []
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("PRs"),
    )
    with Progress(*columns, console=console, disable=console is None) as progress:
        for repo in repos:
            task = progress.add_task(repo, total=None)
            repository_id, nodes = read_pulls(
                reader,
                repo,
                PullStore(directory, repo),
                cutoff,
                page_size=page_size,
                advance=functools.partial(progress.advance, task),
            )
            progress.update(task, total=len(nodes), completed=len(nodes))
            ref = RepositoryRef(client.installation_id, repository_id, repo)
            for node in nodes:
                found.extend(deliveries_of(node, ref))
    return sorted(found, key=lambda recorded: recorded.at), reader.requests
