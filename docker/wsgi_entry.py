"""The WSGI callable uWSGI loads (uwsgi.ini `wsgi-file`): the app named by WSGI_MODULE, handed each field value
without its surrounding whitespace, as RFC 9110 5.5 reads it. nginx trims spaces around a value but not tabs, so a
value sent as "\tx\t" would otherwise reach the app with its tabs. Nothing else is changed.
"""

import functools
import importlib
import os
import sys

# The app's own directory first, as check-app imports it.
sys.path.insert(0, os.environ.get("APP_DIR", "/srv/app"))
_module, _, _name = os.environ["WSGI_MODULE"].partition(":")
app = functools.reduce(getattr, (_name or "application").split("."), importlib.import_module(_module))
WHITESPACE = " \t"


def application(environ, start_response):
    for key, value in environ.items():
        if key.startswith("HTTP_") and value and (value[0] in WHITESPACE or value[-1] in WHITESPACE):
            environ[key] = value.strip(WHITESPACE)
    return app(environ, start_response)
