"""Where the limiters keep their state: Redis (every worker on every machine) or memory (one process)."""
