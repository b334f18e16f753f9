"""What arrives from GitHub: intake, routing, payload models, and the handlers that reduce
a delivery to change records."""
