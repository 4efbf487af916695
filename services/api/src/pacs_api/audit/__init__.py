"""The audit trail (PS3.15 A.5, IHE ATNA): every access over HTTP, and over DIMSE as the bridge
reports it, appended to the ``audit_event`` table (which refuses UPDATE and DELETE) and to a
JSON-lines stream; admins read it with ``GET /audit``.

- :mod:`.tables`: the ``audit_event`` table;
- :mod:`.log`: appending records (table and stream) and searching them;
- :mod:`.note`: what a route tells the recorder beyond its URL (the instances it stored...);
- :mod:`.http`: the middleware that turns each HTTP request into records;
- :mod:`.routes`: ``GET /audit`` (admin) and ``POST /audit`` (records of other services).
"""
