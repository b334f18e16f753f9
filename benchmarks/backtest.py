"""`stoplight backtest --from FILE --suggest` on a recorded org month: how long it takes.

    python -m benchmarks.backtest [--pulls 300] [--repos 6] [--days 35] [--keep DIR]
    python -m benchmarks.backtest --team-year 365 [--per-day 6] [--abandoned 0.02]
        [--missing-closes 0.05]

Generates the month (benchmarks/org_history.py: PRs over working hours, drafts, change
requests, expedites, two teams in Berlin working hours), writes its deliveries in the replay
format, runs the command as a user would, prints its report and the time it took. With
`--team-year DAYS`, one team's history of that many days instead (benchmarks/team_history.py:
bursts, gaps, bot reviews, agent authors, `--abandoned` PRs and `--missing-closes`), the window
its whole span. `--keep` leaves the recorded file and configuration in DIR.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.org_history import org_config, org_month
from benchmarks.team_history import TeamShape, deliveries_of, team_config, team_year
from stoplight.backtest.history import write_recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pulls", type=int, default=300)
    parser.add_argument("--repos", type=int, default=6)
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--team-year", type=int, metavar="DAYS", help="one team's history")
    parser.add_argument("--per-day", type=float, default=6.0, help="PRs a working day")
    parser.add_argument("--abandoned", type=float, default=0.0, help="share of PRs left open")
    parser.add_argument("--missing-closes", type=float, default=0.0, help="closes undelivered")
    parser.add_argument("--keep", type=Path, help="write the recorded month here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stoplight-bench-") as scratch:
        directory = args.keep or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        if args.team_year:
            shape = TeamShape(
                days=args.team_year,
                per_working_day=args.per_day,
                abandoned=args.abandoned,
                close_missing=args.missing_closes,
            )
            pulls = team_year(shape)
            config_text, window = team_config(), f"{args.team_year}d"
        else:
            pulls = org_month(args.pulls, repos=args.repos, days=args.days)
            config_text, window = org_config(args.repos), "30d"
        deliveries = deliveries_of(pulls)
        recorded = directory / "history.jsonl"
        recorded.write_text("".join(write_recorded(deliveries)))
        config = directory / "stoplight.yml"
        config.write_text(config_text)
        size = recorded.stat().st_size
        print(f"{len(pulls)} PRs, {len(deliveries)} deliveries, {size / 1e6:.1f} MB recorded")
        env = {**os.environ, "DATA_DIR": str(Path(scratch) / "data"), "LOG_LEVEL": "warning"}
        env.pop("REDIS_URL", None)
        command = [sys.executable, "-m", "stoplight", "backtest", "--from", str(recorded)]
        command += ["--config", str(config), "--since", window, "--suggest"]
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True)
        print(f"stoplight backtest --from --suggest: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
