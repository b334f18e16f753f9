"""`stoplight backtest`: a team's past deliveries replayed through the live pipeline on a
simulated clock, the light it would have shown summed up, and thresholds fitted to the team.

history    recorded deliveries: read from a file, or rebuilt from GitHub's GraphQL API
graphql    paged reads of PRs with their timelines, resumable, paced
simulation the pipeline, its workers and its scheduled re-evaluations on a scratch Redis
summary    hours per light, notices, held PRs and weekly flow figures from what it recorded
chart      the waiting count over time, coloured by the light, in the terminal
suggest    thresholds that put the team in yellow and red for a target share of its time
latest     the latest summary per team, kept in the app's Redis for the team page
"""
