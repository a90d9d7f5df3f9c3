#!/usr/bin/env python3
"""Build-time: put the app's static files in $STATIC_ROOT (/srv/static), where the nginx image copies them from.

- A Django app (DJANGO_SETTINGS_MODULE): collectstatic, with a throwaway key (nothing is signed at build time), into
  the app's own STATIC_ROOT, where its storage looks for them at run time too (ManifestStaticFilesStorage reads its
  manifest there: a page's {% static %} is a 500 without it), then linked into $STATIC_ROOT for nginx. An app
  without a STATIC_ROOT of its own collects into $STATIC_ROOT (the default app reads it from the environment).
- Another app: a copy of STATIC_DIR, its folder of static files; or, with neither, a marker that there are none for
  nginx (nginx-entrypoint.d/50-static.sh then claims no URL prefix, so that every path, an app's own /static/ route
  among them, reaches the app).

The settings are imported at build time, where the app's run-time environment is not (APP_ENV_FILE, DATABASE_URL,
the secret key): settings that require one of its variables fail here, with a line saying so ("app image: ", which
`make up` shows as the build's failure).
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import traceback
from pathlib import Path

NONE_MARKER = ".no-static-files"


def django_static(target: Path) -> None:
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    import django
    from django.conf import settings
    from django.core.management import call_command

    own = Path(settings.STATIC_ROOT).resolve() if settings.STATIC_ROOT else None
    if own is None:
        settings.STATIC_ROOT = str(target)
    django.setup()
    call_command("collectstatic", interactive=False, verbosity=0)
    target.mkdir(parents=True, exist_ok=True)  # an app with no static files at all: none for nginx
    if own is not None and own.is_dir() and own != target.resolve():
        # Hard links: the same files in the same layer, no second copy in the image.
        shutil.copytree(own, target, copy_function=os.link, dirs_exist_ok=True)


def main() -> int:
    app_dir = Path(os.environ.get("APP_DIR", "/srv/app"))
    target = Path(os.environ["STATIC_ROOT"])
    os.chdir(app_dir)
    sys.path.insert(0, str(app_dir))
    if module := os.environ.get("DJANGO_SETTINGS_MODULE"):
        try:
            django_static(target)
        except Exception as error:  # noqa: BLE001 - the settings' own (a variable they require), or collectstatic's
            traceback.print_exc()
            said = (str(error).strip().splitlines() or [""])[0]
            sys.stderr.write(
                f"app image: collectstatic with DJANGO_SETTINGS_MODULE={module} failed at build time:"
                f" {type(error).__name__}: {said}. The build has none of the app's run-time environment (APP_ENV_FILE,"
                " DATABASE_URL, the secret key): give what the settings read from it a default\n"
            )
            return 1
    elif static_dir := os.environ.get("STATIC_DIR"):
        shutil.copytree(app_dir / static_dir, target, symlinks=True, dirs_exist_ok=True)
    else:
        target.mkdir(parents=True, exist_ok=True)
        (target / NONE_MARKER).touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
