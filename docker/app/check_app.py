#!/usr/bin/env python3
"""Before uWSGI starts: WSGI_MODULE must import and name a WSGI callable, or an app factory that returns one
(module:factory(), called with no arguments, as each worker calls it: docker/app/wsgi_entry.py).

Otherwise print the traceback, then one line naming the problem, and exit 78 (EX_CONFIG), so that the
container fails fast and `make up` can show why, instead of uWSGI looping on a broken app.
"""

import importlib
import inspect
import os
import sys
import traceback

EX_CONFIG = 78

# Modules an app, or a package it requires, may import that the app image's Python does not hold, though older setups
# did: the Python that left each out, and what brings it back. Trac 1.6 and Pyramid 2.0 import pkg_resources without
# requiring setuptools, which virtualenvs hold no more since Python 3.12; Pyramid's WebOb imports cgi (gone in 3.13).
ADD_SETUPTOOLS = "add setuptools to requirements.txt"
SETUPTOOLS = f"it comes with setuptools, which virtualenvs hold no more since Python 3.12: {ADD_SETUPTOOLS}"
DISTUTILS = f"Python 3.12 removed it (PEP 632), and setuptools brings it back: {ADD_SETUPTOOLS}"
LEGACY_CGI = "Python 3.13 removed it (PEP 594): add legacy-cgi, its backport, to requirements.txt"
REMOVED = "Python {} removed it (PEP 594): the package that imports it needs a newer release, or a backport of it"
GONE = {
    "pkg_resources": ((3, 12), SETUPTOOLS),
    "setuptools": ((3, 12), SETUPTOOLS),
    "distutils": ((3, 12), DISTUTILS),
    "cgi": ((3, 13), LEGACY_CGI),
    "cgitb": ((3, 13), LEGACY_CGI),
    **dict.fromkeys(("asynchat", "asyncore", "imp", "smtpd"), ((3, 12), REMOVED.format("3.12"))),
    **dict.fromkeys(
        (
            *("aifc", "audioop", "chunk", "crypt", "imghdr", "mailcap", "msilib", "nis", "nntplib", "ossaudiodev"),
            *("pipes", "sndhdr", "spwd", "sunau", "telnetlib", "uu", "xdrlib"),
        ),
        ((3, 13), REMOVED.format("3.13")),
    ),
}


def gone_hint(exc: BaseException, python: tuple = sys.version_info) -> str:
    """For a module the `python` no longer holds (GONE): " (what brings it back)", else ""."""
    name = (exc.name or "").partition(".")[0] if isinstance(exc, ModuleNotFoundError) else ""
    since, hint = GONE.get(name, (None, ""))
    return f" ({hint})" if since and python >= since else ""


def fail(spec: str, problem: str) -> int:
    print(f"wsgi-chain: WSGI_MODULE={spec}: {problem}", file=sys.stderr, flush=True)
    return EX_CONFIG


def main() -> int:
    spec = os.environ.get("WSGI_MODULE", "")
    module_name, _, attribute = spec.partition(":")
    attribute, factory, _ = attribute.partition("(")
    if not module_name:
        return fail(spec, "not set; use package.module:callable")
    sys.path.insert(0, os.environ.get("APP_DIR", "/srv/app"))
    try:
        target = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the app's, reported as such
        traceback.print_exc()
        return fail(spec, f"cannot import {module_name}: {type(exc).__name__}: {exc}{gone_hint(exc)}")
    for part in (attribute or "application").split("."):
        if not hasattr(target, part):
            return fail(spec, f"{module_name} has no attribute {part!r}")
        target = getattr(target, part)
    if factory:
        if not callable(target):
            return fail(spec, f"{attribute} is a {type(target).__name__}, not an app factory")
        try:
            target = target()
        except Exception as exc:  # noqa: BLE001 - the factory's own failure, reported as such
            traceback.print_exc()
            return fail(spec, f"{attribute}() raised {type(exc).__name__}: {exc}")
    if not callable(target):
        found = f"{attribute}() returned a" if factory else "is a"
        kind = type(target).__name__
        return fail(spec, f"{found} {kind}, not a WSGI app (a callable taking environ, start_response)")
    try:
        inspect.signature(target).bind(object(), object())
    except TypeError:
        return fail(spec, f"{target!r} is not a WSGI app: it cannot be called with (environ, start_response)")
    except ValueError:
        pass  # no signature to inspect (a C callable): let uWSGI try it
    return 0


if __name__ == "__main__":
    sys.exit(main())
