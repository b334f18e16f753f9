"""Every queue of background work: the lanes' delivery streams, RQ's fan-out and timed jobs,
retries, dead letters, heartbeats and claims, and the worker loop that reads them all."""
