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
        return fail(spec, f"cannot import {module_name}: {type(exc).__name__}: {exc}")
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
