"""All event handlers, composed into one router."""

from stoplight.events import installations, merge_groups, pulls, pushes, reviews
from stoplight.events.routing import Router

router = Router()
for module in (pulls, reviews, installations, pushes, merge_groups):
    router.include(module.router)

__all__ = ["router"]
