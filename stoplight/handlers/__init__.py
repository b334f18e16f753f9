"""All event handlers, composed into one router."""

from stoplight.handlers import installations, pulls, reviews
from stoplight.router import Router

router = Router()
for module in (pulls, reviews, installations):
    router.include(module.router)

__all__ = ["router"]
