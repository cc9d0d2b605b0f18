"""Operations: what tells an operator whether the system runs, and what it does.

- :mod:`identity`: this process's id (host, pid and a random part: containers may share both).
- :mod:`fingerprint`: short hashes of the store, broker and limiter URLs (passwords removed first), so
  that processes can compare what they use without showing it.
- :mod:`heartbeat`: every worker and the beat write a heartbeat to Redis every few seconds; the web, the
  CLI and ``doctor`` read them (who is alive, since when, on which store and queues).
- :mod:`deployment`: a worker or beat refuses a shared store beside a one-machine broker or limiter.
- :mod:`doctor`: the checks of ``dispatcher doctor`` and the 系统状态 page.
- :mod:`metrics`: ``GET /metrics``, read from the store and Redis at scrape time.
- :mod:`logs`: optional JSON log lines carrying campaign, chunk and account ids.
"""
