"""What the app keeps in Redis: the review queues, installations, team history, read models."""
