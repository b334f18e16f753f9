"""All event handlers, composed into one router."""

from stoplight.handlers import installations, pulls, pushes, reviews
from stoplight.router import Router

router = Router()
for module in (pulls, reviews, installations, pushes):
    router.include(module.router)

__all__ = ["router"]
