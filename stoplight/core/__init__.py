"""The pure core: the light, a PR's transitions, working hours, sizes, flow figures. No I/O;
nothing from outside `core/` but the standard library and pydantic."""
