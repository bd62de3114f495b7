"""notify: a run's summary posted to chat, webhooks, DefectDojo, a Prometheus Pushgateway and PagerDuty.

`model.py` is the small interface (the summary that leaves the runner, a channel, its settings), `results.py`
reads a results folder into a summary (every string from SARIF is hostile: bounded and sanitised), `http.py`
is the one way out (https or loopback only, no redirects, retries with backoff inside a time budget), and each
channel is one file behind the explicit `registry.CHANNELS` tuple. The CLI is `stages/notify.py`.
"""
