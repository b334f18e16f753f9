"""`stoplight backtest`: a team's past deliveries replayed through the live pipeline on a
simulated clock, the light it would have shown summed up, and thresholds fitted to the team.

history    recorded deliveries in the replay format, read and written
graphql    paged, resumable, limit-keeping reads of PRs with their timelines
rebuild    a PR's GraphQL history turned back into the deliveries GitHub sent
fetch      an installation's repositories read that way, with a progress bar
simulation the pipeline, its jobs and its scheduled re-evaluations on a scratch Redis
summary    hours per light, notices, held PRs and weekly flow figures of one team
suggest    thresholds that put a team in yellow and red for a target share of its time
report     the whole backtest: current configuration, suggestion, and the suggestion's run
chart      the waiting count over the window, coloured by the light, for the terminal
render     the terminal report
latest     the latest backtest per team, kept in the app's Redis for the team page
"""
