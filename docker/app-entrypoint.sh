#!/bin/sh
# The app container's commands:
#   serve     (default) run the uWSGI master and its workers
#   listen    run the socket listener (uwsgi/listener.ini): owns nginx's socket across app server restarts
#   prestart  run the app's pre-start hook once per deploy ($PRESTART_CMD, else an executable ./prestart)
#   anything else is run as given (e.g. `python manage.py shell`)
set -eu
cmd="${1:-serve}"
case "$cmd" in
serve)
    shift || true
    check-app
    exec uwsgi --ini /etc/uwsgi/uwsgi.ini "$@"
    ;;
listen)
    shift || true
    exec uwsgi --ini /etc/uwsgi/listener.ini "$@"
    ;;
prestart)
    if [ -n "${PRESTART_CMD:-}" ]; then
        echo "prestart: running PRESTART_CMD"
        exec sh -c "$PRESTART_CMD"
    elif [ -x "$APP_DIR/prestart" ]; then
        echo "prestart: running $APP_DIR/prestart"
        exec "$APP_DIR/prestart"
    fi
    echo "prestart: no hook (set PRESTART_CMD or ship an executable prestart); nothing to do"
    ;;
*)
    exec "$@"
    ;;
esac
