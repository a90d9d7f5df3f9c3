#!/bin/sh
# Build-time: put the app's static files in $STATIC_ROOT, where the nginx image copies them from.
# Django apps: collectstatic (with a throwaway key: nothing is signed at build time). Others: copy $STATIC_DIR, or
# say there is none.
set -eu
cd "$APP_DIR"
if [ -n "${DJANGO_SETTINGS_MODULE:-}" ]; then
    SECRET_KEY="$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')" \
        python3 -m django collectstatic --noinput --verbosity 0
elif [ -n "${STATIC_DIR:-}" ]; then
    mkdir -p "$STATIC_ROOT"
    cp -a "$APP_DIR/$STATIC_DIR/." "$STATIC_ROOT/"
else
    # None for nginx: this marker tells nginx-entrypoint.d/50-static.sh to claim no URL prefix, so that every path,
    # the app's own /static/ route among them (Flask's), reaches the app.
    mkdir -p "$STATIC_ROOT"
    : >"$STATIC_ROOT/.no-static-files"
fi
