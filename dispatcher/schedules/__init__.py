"""Recurring campaigns: a schedule fires on a cron rhythm (China time), optionally on China's official
working days only, and each firing creates one campaign from the newest file its source names.

- :mod:`timing`: pure rules (cron firings, the grace, the working-day calendar, durations).
- :mod:`source`: which file a firing reads (a file, the newest of a folder or a glob).
- :mod:`records`: the schedules and their runs in the store.
- :mod:`firing`: what the beat does each time it asks (claim a firing once, create and schedule the
  campaign, record every skip with its reason).
"""
