"""installation and installation_repositories deliveries: which repositories the app sees."""

from __future__ import annotations

from collections.abc import Iterable

from stoplight.core.changes import Change, InstallationChange, RepositoryRef
from stoplight.events.payloads import InstallationEvent, Repository
from stoplight.events.routing import Delivery, Router

router = Router()


def _refs(repositories: list[Repository]) -> tuple[RepositoryRef, ...]:
    return tuple(RepositoryRef(id=repo.id, full_name=repo.full_name) for repo in repositories)


@router.on(
    "installation.created",
    "installation.deleted",
    "installation.suspend",
    "installation.unsuspend",
)
def installation_changed(delivery: Delivery) -> Iterable[Change]:
    event = InstallationEvent.model_validate(delivery.payload)
    yield InstallationChange(action=event.action, added=_refs(event.repositories or []))


@router.on("installation_repositories.added", "installation_repositories.removed")
def repositories_changed(delivery: Delivery) -> Iterable[Change]:
    event = InstallationEvent.model_validate(delivery.payload)
    yield InstallationChange(
        action=event.action,
        added=_refs(event.repositories_added),
        removed=_refs(event.repositories_removed),
    )
