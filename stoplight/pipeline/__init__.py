"""The work behind every job, and the job lanes and workers that carry it. The RQ entry points
are in `stoplight.jobs`, whose name jobs stored in Redis keep."""
