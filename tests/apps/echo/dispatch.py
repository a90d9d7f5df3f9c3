"""One WSGI app that mounts the echo apps by path prefix (/plain/, /flask/, /django/, /falcon/, /bottle/), so one
image and one stack serve every framework. `/` answers 200 and everything else 404: there is no health route.

WSGI_MODULE=dispatch:application
"""

import bottle_echo
import django_echo
import falcon_echo
import flask_echo
import plain_echo

MOUNTS = {
    "plain": plain_echo.application,
    "flask": flask_echo.app,
    "django": django_echo.application,
    "falcon": falcon_echo.app,
    "bottle": bottle_echo.app,
}


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"echo\n"]
    name, _, rest = path[1:].partition("/")
    if name in MOUNTS:
        # The prefix moves from PATH_INFO to SCRIPT_NAME, as any WSGI mount does (PEP 3333).
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/" + name
        environ["PATH_INFO"] = "/" + rest
        return MOUNTS[name](environ, start_response)
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return [b"not found\n"]
