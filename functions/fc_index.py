"""The code package's `index.py`: `python -m functions package` ships this file at the code root
under that name, so the deployed handlers are `index.handler`, `index.http_handler` and
`index.wsgi_handler` — the documented `file.method` form (a dotted package path such as
`functions.fc.handler` is not documented for FC's Python runtime).

Which handler goes with which trigger (template.yml and s.yaml wire the first two):
- `handler(event, context)`: event invocations (InvokeFunction; FC 3.0 and FC 2.0 alike).
- `http_handler(event, context)`: an FC 3.0 HTTP trigger (built-in runtime): the request as a JSON
  event in, `{statusCode, headers, body}` out.
- `wsgi_handler(environ, start_response)`: an FC 2.0 HTTP trigger, which calls Python as WSGI.
"""

from __future__ import annotations

from functions.fc import handler, http_handler, wsgi_handler

__all__ = ["handler", "http_handler", "wsgi_handler"]
