"""`stoplight backtest --from FILE --suggest` on a recorded org month: how long it takes.

    python -m benchmarks.backtest [--pulls 300] [--repos 6] [--days 35] [--keep DIR]

Generates the month (benchmarks/org_history.py: PRs over working hours, drafts, change
requests, expedites, two teams in Berlin working hours), writes its deliveries in the replay
format, runs the command as a user would, prints its report and the time it took. `--keep`
leaves the recorded file and configuration in DIR.
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
from stoplight.backtest.history import write_recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pulls", type=int, default=300)
    parser.add_argument("--repos", type=int, default=6)
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--keep", type=Path, help="write the recorded month here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stoplight-bench-") as scratch:
        directory = args.keep or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        pulls = org_month(args.pulls, repos=args.repos, days=args.days)
        deliveries = sorted((d for pull in pulls for d in pull.deliveries()), key=lambda d: d.at)
        recorded = directory / "org-month.jsonl"
        recorded.write_text("".join(write_recorded(deliveries)))
        config = directory / "stoplight.yml"
        config.write_text(org_config(args.repos))
        size = recorded.stat().st_size
        print(f"{len(pulls)} PRs, {len(deliveries)} deliveries, {size / 1e6:.1f} MB recorded")
        env = {**os.environ, "DATA_DIR": str(Path(scratch) / "data"), "LOG_LEVEL": "warning"}
        env.pop("REDIS_URL", None)
        command = [sys.executable, "-m", "stoplight", "backtest", "--from", str(recorded)]
        command += ["--config", str(config), "--since", "30d", "--suggest"]
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True)
        print(f"stoplight backtest --from --suggest: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
