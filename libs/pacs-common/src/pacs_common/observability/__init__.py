"""What operators see of a service: Prometheus metrics, JSON logs, request ids.

- :mod:`.requestid`: the request id of the work in hand (a context variable), taken from an
  incoming ``X-Request-ID`` header when valid, sent on outgoing calls (an httpx event hook);
- :mod:`.logs`: one JSON object per log line, carrying the request id;
- :mod:`.metrics`: a service's metrics registry, with single- and multi-process exposition;
- :mod:`.http`: the ASGI middleware (request id, HTTP metrics per route template, access log)
  and the ``GET /metrics`` route, used by the API, the exporter and the bridge's status API.
"""
