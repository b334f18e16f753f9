"""Stoplight: a GitHub App that levels the flow of pull requests into code review."""
