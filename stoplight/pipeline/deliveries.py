"""A delivery's job: its payload -> handlers -> change records -> the team's queue -> its light.

Each step takes the runtime explicitly, so tests drive it with a fake clock and real Redis.
The light's evaluation is in lights.py, its fan-out to GitHub in fanout.py.
"""

from __future__ import annotations

import logging
from typing import TypeGuard

from pydantic import ValidationError

from stoplight import logs
from stoplight.config.repos import Entry, RepoConfigs
from stoplight.core.changes import (
    Change,
    ConfigChange,
    InstallationChange,
    MergeGroupChange,
    PullChange,
    PullSnapshot,
    ReviewChange,
)
from stoplight.core.marks import MANAGED_LABELS
from stoplight.core.pulls import pull_key
from stoplight.effects.labels import Labels
from stoplight.events import intake
from stoplight.events.handlers import router
from stoplight.events.routing import Delivery
from stoplight.pipeline.configs import repo_configs
from stoplight.pipeline.fanout import request_effects
from stoplight.pipeline.installations import apply_installation_change
from stoplight.pipeline.lights import refresh_team
from stoplight.pipeline.merge_groups import apply_merge_group_change
from stoplight.pipeline.runtime import Runtime
from stoplight.pipeline.sizes import with_excluded_lines
from stoplight.state.installations import Admission, Installation, admission_of
from stoplight.state.review_queue import QueueStore, Team

log = logging.getLogger(__name__)


# Label changes: the expedite label moves a PR; the others matter only to the label ledger.
LABEL_ACTIONS = frozenset({"labeled", "unlabeled"})


def apply_delivery(rt: Runtime, delivery_id: str, event: str, body: bytes) -> None:
    """Parse a delivery, turn it into change records and apply each; a delivery that is not
    one stoplight can use is logged and dropped."""
    name = event
    try:
        payload = intake.parse_body(body)
        if not isinstance(payload, dict):
            raise ValueError("body is not a JSON object")
        delivery = Delivery(id=delivery_id, event=event, payload=payload)
        name = delivery.name
        installation_id = delivery.installation_id
        if installation_id is None:
            raise ValueError("installation.id: missing")
        changes = router.dispatch(delivery)
    except (ValidationError, ValueError) as error:
        log.warning("delivery %s (%s) ignored: %s", delivery_id, name, _brief(error))
    else:
        if not changes:
            log.info("delivery %s (%s): nothing stoplight uses", delivery_id, name)
        for change in changes:
            with logs.about(change):
                apply_change(rt, installation_id, change)


def _brief(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in issue['loc'])}: {issue['msg']}"
            for issue in error.errors()[:3]
        )
    return str(error)


def apply_change(rt: Runtime, installation_id: int, change: Change) -> None:
    if isinstance(change, InstallationChange):
        apply_installation_change(rt, installation_id, change)
        return
    if isinstance(change, ConfigChange):
        apply_config_change(rt, installation_id, change)
        return
    if isinstance(change, MergeGroupChange):
        apply_merge_group_change(rt, installation_id, change)
        return
    client = rt.github.installation(installation_id) if rt.github else None
    configs = RepoConfigs(rt.redis, installation_id, client)
    pull = change.pull
    with rt.redis.pipeline(transaction=False) as reads:
        Installation(rt.redis, installation_id).read_admission(reads, pull.repo_id)
        configs.read_entry(reads, pull.repo)
        deleted, known, granted, entry = reads.execute()
    if not _accepts(installation_id, pull, admission_of(deleted, known, granted)):
        return
    # The team's home is remembered by the queue store's transaction, with the change.
    settings = configs.team_of_repository(pull.repo, Entry(entry))
    if _other_label(change, settings.rules.expedite_label):
        apply_label_removal(rt, installation_id, change, settings.key)
        return
    if settings.size_exclude and client is not None:
        change = with_excluded_lines(rt.redis, client, change, settings.size_exclude)
    team = Team(key=settings.key, name=settings.name, home=settings.home or pull.repo)
    store = QueueStore(rt.redis, installation_id)
    transition = store.apply(change, team, settings.rules, rt.clock.now())
    before = transition.before
    log.info(
        "%s#%s %s: %s -> %s",
        change.pull.repo,
        change.pull.number,
        change.action,
        before.phase if before else "new",
        transition.after.phase,
    )
    if before is not None and before.team != team.key:
        refresh_team(rt, installation_id, before.team)
    refresh_team(rt, installation_id, team.key, settings, transition.team)


def _other_label(change: PullChange | ReviewChange, expedite_label: str) -> TypeGuard[PullChange]:
    """A label change that does not touch the expedite label, the one label that moves a PR."""
    return (
        isinstance(change, PullChange)
        and change.action in LABEL_ACTIONS
        and change.label != expedite_label
    )


def apply_label_removal(rt: Runtime, installation_id: int, change: PullChange, team: str) -> None:
    """A label other than the expedite label came or went; only the removal of one the app
    manages (a person took `stoplight:held` off) matters: the ledger learns it, and the next
    pass puts the label back while it is still wanted. The app's own label writes come back
    as such deliveries too, and set off nothing."""
    pull = change.pull
    if change.action != "unlabeled" or change.label not in MANAGED_LABELS or rt.github is None:
        return
    client = rt.github.installation(installation_id)
    if Labels(client).forget(pull_key(pull.repo_id, pull.number), change.label):
        log.info("%s#%s: %s was removed on GitHub", pull.repo, pull.number, change.label)
        request_effects(rt, installation_id, team)


def apply_config_change(rt: Runtime, installation_id: int, change: ConfigChange) -> None:
    """Reload every cached configuration (another repository may extend the changed file).
    A repository whose reload fails (GitHub failing for it) leaves the others reloaded; the
    failure is raised at the end, so the delivery is tried again."""
    configs = repo_configs(rt, installation_id)
    store = QueueStore(rt.redis, installation_id)
    repos = sorted({change.repo, *configs.repos()})
    teams, failed = set(), []
    for repo in repos:
        try:
            loaded = configs.reload(repo)
        except Exception:
            log.exception("%s: configuration could not be reloaded", repo)
            failed.append(repo)
            continue
        log.info("%s: configuration reloaded%s", repo, f" ({loaded.error})" if loaded.error else "")
        settings = configs.assign_team(repo)
        teams.add(settings.key)
        home = Team(key=settings.key, name=settings.name, home=settings.home)
        teams |= store.move_repository(repo, home, rt.clock.now())
    for team in sorted(teams):
        refresh_team(rt, installation_id, team)
    if failed:
        raise ConfigReloadFailed(f"configuration of {', '.join(failed)} could not be reloaded")


class ConfigReloadFailed(Exception):
    """Some repositories' configurations were not reloaded; the others were."""


def _accepts(installation_id: int, pull: PullSnapshot, admission: Admission) -> bool:
    """Whether a PR change belongs to a live installation and one of its repositories."""
    if admission.deleted:
        log.info(
            "%s#%s ignored: installation %s was deleted", pull.repo, pull.number, installation_id
        )
        return False
    if not admission.granted:
        log.info(
            "%s#%s ignored: %s is not among installation %s's repositories",
            pull.repo,
            pull.number,
            pull.repo,
            installation_id,
        )
        return False
    return True
