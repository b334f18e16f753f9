"""`.github/stoplight.yml`: its schema, and each repository's configuration looked up and cached."""
