#!/bin/sh
# The app container's commands:
#   serve     (default) run the uWSGI master and its workers, after check-app (--checked: without, it has just passed)
#   listen    run the socket listener (uwsgi/listener.ini): owns nginx's socket across app server restarts
#   prestart  run the app's pre-start hook once per deploy ($PRESTART_CMD, else an executable ./prestart)
#   anything else is run as given (e.g. `python manage.py shell`)
set -eu
# A home the app's libraries can write their caches and settings to (matplotlib, fontconfig, Hugging Face...): the
# image's, /srv/app, is the app's code on the read-only root, and such a library then made a new temporary cache in
# every process, each worker and each recycled one, and said so in the log. On the temp volume (TMPDIR, else /tmp),
# kept across restarts as a cache may be; left as it is where neither can be written.
if [ ! -w "${HOME:-/nonexistent}" ] && home="${TMPDIR:-/tmp}/home" && mkdir -p -m 0700 "$home" 2>/dev/null; then
    export HOME="$home"
fi
# MEDIA_ROOT, where the app's environment says to keep its clients' files (on the data volume), is there for any
# command, MEDIA_URL set or not: an app's storage may write there as it is created (bepasty's makes a file at import
# and stopped at start on FileNotFoundError). Left alone where it cannot be made (no data volume: Kubernetes).
[ -z "${MEDIA_ROOT:-}" ] || mkdir -p "$MEDIA_ROOT" 2>/dev/null || true
cmd="${1:-serve}"
case "$cmd" in
serve)
    shift || true
    # --checked: check-app has just passed for this image and these settings (try-app, which `make up` runs after its
    # own check-app in a one-off container): the app is not imported once more before uWSGI imports it.
    checked=""
    if [ "${1:-}" = --checked ]; then
        checked=1
        shift
    fi
    # A stop before uWSGI runs (during check-app) ends the container at once. As the container's first process
    # without an init (Kubernetes), the shell is sent the stop signal with no handler and the kernel drops it: the
    # stop waited out its timeout. The trap runs once the command in hand has finished.
    trap 'echo "app-entrypoint: stopped before uWSGI started" >&2; exit 0' TERM INT QUIT
    case "${LOG_FORMAT:-json}" in
    json|text) ;;
    *) echo "app-entrypoint: LOG_FORMAT=$LOG_FORMAT: use json or text" >&2; exit 78 ;;
    esac
    # Seconds a request may wait in the queue before it is answered 503 (docs/operations.md: Bursts); 0: no deadline.
    case "${QUEUE_TIMEOUT:-10}" in
    *[!0-9.]* | *.*.* | .) echo "app-entrypoint: QUEUE_TIMEOUT=$QUEUE_TIMEOUT: use seconds, e.g. 10 (0: no deadline)" >&2; exit 78 ;;
    esac
    # A worker past this many MB of memory is recycled after its request (uwsgi/uwsgi.ini holds the default, for
    # when it is unset); 0: never.
    case "${WORKER_MAX_RSS_MB-512}" in
    '' | *[!0-9]*) echo "app-entrypoint: WORKER_MAX_RSS_MB=$WORKER_MAX_RSS_MB: use whole megabytes, e.g. 512 (0: never)" >&2; exit 78 ;;
    esac
    # The app's metrics, one file per worker process (prometheus-client's multiprocess mode), read by
    # metrics-exporter. Emptied before any worker starts: files of a previous run's processes would count twice.
    export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/prometheus}"
    rm -rf "$PROMETHEUS_MULTIPROC_DIR"
    mkdir -p -m 0700 "$PROMETHEUS_MULTIPROC_DIR"
    # MEDIA_URL (empty: none): the prefix uWSGI serves MEDIA_ROOT's files under (uwsgi/uwsgi.ini). Unset when empty:
    # uWSGI's if-env holds for a set variable, and an empty prefix would match every path. uWSGI looks for the
    # directory once, at its first request under the prefix, and serves nothing from it if it is missing then.
    case "${MEDIA_URL:-}" in
    '') unset MEDIA_URL ;;
    /*/) case "$MEDIA_URL" in
        *[!A-Za-z0-9/._-]* | *//* | */./* | */../*) echo "app-entrypoint: MEDIA_URL=$MEDIA_URL: use segments of A-Z a-z 0-9 . _ - (none empty, . or ..), such as /media/" >&2; exit 78 ;;
        esac
        [ -d "$MEDIA_ROOT" ] || {
            echo "app-entrypoint: MEDIA_URL=$MEDIA_URL: MEDIA_ROOT=$MEDIA_ROOT cannot be made: it is on the data volume (/var/lib/app), which Kubernetes gives the app none of: keep uploads in object storage there, MEDIA_URL empty" >&2
            exit 78
        } ;;
    *) echo "app-entrypoint: MEDIA_URL=$MEDIA_URL: use a path like /media/ (leading and trailing slash), or empty for none" >&2; exit 78 ;;
    esac
    [ -n "$checked" ] || check-app
    # STOP_DRAIN (seconds; unset or 0: none): keep serving that long after the stop signal, before uWSGI's graceful
    # stop, so that a replica that leaves a service's DNS (Swarm: compose.swarm.yaml) gets no connection after its
    # socket closes. Kubernetes does the same with a preStop sleep. Without it, uWSGI becomes the process itself.
    case "${STOP_DRAIN:-0}" in
    *[!0-9]*) echo "app-entrypoint: STOP_DRAIN=$STOP_DRAIN: use whole seconds, e.g. 3 (0: none)" >&2; exit 78 ;;
    0) exec uwsgi --ini /etc/uwsgi/uwsgi.ini "$@" ;;
    esac
    trap - INT QUIT
    uwsgi --ini /etc/uwsgi/uwsgi.ini "$@" &
    server=$!
    trap 'stopping=1' TERM
    status=0
    wait "$server" || status=$?
    if [ -n "${stopping:-}" ]; then
        echo "app-entrypoint: stopping in ${STOP_DRAIN} s (serving meanwhile), then gracefully" >&2
        sleep "$STOP_DRAIN"
        kill -TERM "$server"
        status=0
        wait "$server" || status=$?
    fi
    exit "$status"
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
