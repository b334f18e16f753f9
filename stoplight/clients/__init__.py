"""The transports to GitHub and Slack: auth, tokens, pagination, pacing, retries."""
