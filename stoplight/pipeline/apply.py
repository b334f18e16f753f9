"""The apply stage: a change record applied to the installation's state, then its team's
light re-evaluated (the light stage, lights.py).

A PR's change goes to its team's queue (`state/review_queue.py`, where the pure
`core/pulls.py` decides what it means); installation, configuration and merge group changes
go to their own stores. A change for a repository the installation no longer covers is
dropped here.
"""

from __future__ import annotations

import logging
from typing import TypeGuard

from stoplight.config.repos import Entry
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
from stoplight.pipeline.context import InstallationContext
from stoplight.pipeline.fanout import request_effects
from stoplight.pipeline.installations import apply_installation_change
from stoplight.pipeline.lights import refresh_team
from stoplight.pipeline.merge_groups import apply_merge_group_change
from stoplight.state.installations import Admission, Installation, admission_of
from stoplight.state.review_queue import Team

log = logging.getLogger(__name__)


# Label changes: the expedite label moves a PR; the others matter only to the label ledger.
LABEL_ACTIONS = frozenset({"labeled", "unlabeled"})


def apply_change(ctx: InstallationContext, change: Change) -> None:
    if isinstance(change, InstallationChange):
        apply_installation_change(ctx, change)
        return
    if isinstance(change, ConfigChange):
        apply_config_change(ctx, change)
        return
    if isinstance(change, MergeGroupChange):
        apply_merge_group_change(ctx, change)
        return
    pull = change.pull
    with ctx.redis.pipeline(transaction=False) as reads:
        Installation(ctx.redis, ctx.installation_id).read_admission(reads, pull.repo_id)
        ctx.configs.read_entry(reads, pull.repo)
        deleted, known, granted, entry = reads.execute()
    if not _accepts(ctx.installation_id, pull, admission_of(deleted, known, granted)):
        return
    # The team's home is remembered by the queue store's transaction, with the change.
    settings = ctx.configs.team_of_repository(pull.repo, Entry(entry))
    if _other_label(change, settings.rules.expedite_label):
        apply_label_removal(ctx, change, settings.key)
        return
    if settings.size_exclude:
        change = ctx.github.count_excluded_lines(ctx.redis, change, settings.size_exclude)
    team = Team(key=settings.key, name=settings.name, home=settings.home or pull.repo)
    transition = ctx.store.apply(change, team, settings.rules, ctx.clock.now())
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
        refresh_team(ctx, before.team)
    refresh_team(ctx, team.key, settings, transition.team)


def _other_label(change: PullChange | ReviewChange, expedite_label: str) -> TypeGuard[PullChange]:
    """A label change that does not touch the expedite label, the one label that moves a PR."""
    return (
        isinstance(change, PullChange)
        and change.action in LABEL_ACTIONS
        and change.label != expedite_label
    )


def apply_label_removal(ctx: InstallationContext, change: PullChange, team: str) -> None:
    """A label other than the expedite label came or went; only the removal of one the app
    manages (a person took `stoplight:held` off) matters: the ledger learns it, and the next
    pass puts the label back while it is still wanted. The app's own label writes come back
    as such deliveries too, and set off nothing."""
    pull = change.pull
    if change.action != "unlabeled" or change.label not in MANAGED_LABELS:
        return
    if ctx.github.labels.forget(pull_key(pull.repo_id, pull.number), change.label):
        log.info("%s#%s: %s was removed on GitHub", pull.repo, pull.number, change.label)
        request_effects(ctx.runtime, ctx.installation_id, team)


def apply_config_change(ctx: InstallationContext, change: ConfigChange) -> None:
    """Reload every cached configuration (another repository may extend the changed file).
    A repository whose reload fails (GitHub failing for it) leaves the others reloaded; the
    failure is raised at the end, so the delivery is tried again."""
    configs, store = ctx.configs, ctx.store
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
        teams |= store.move_repository(repo, home, ctx.clock.now())
    for team in sorted(teams):
        refresh_team(ctx, team)
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
