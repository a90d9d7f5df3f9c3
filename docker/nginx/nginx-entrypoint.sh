#!/bin/sh
# nginx container start: run the steps in /usr/local/lib/nginx-entrypoint.d/ in order (as the official nginx image's
# /docker-entrypoint.d/ does), then the image's CMD. Each step validates one part of the environment and renders
# its templates (nginx/templates/, at /etc/nginx/templates) into /tmp/nginx, a tmpfs: the root filesystem is
# read-only. Every directive is in the templates: the steps choose files and substitute ${NAME} placeholders only.
# A value that would make a wrong or broken config stops the container with exit 64 and one line naming it.
#   10-server-names  SERVER_NAMES (default: ALLOWED_HOSTS, else localhost,127.0.0.1)
#   20-real-ip       TRUSTED_PROXIES (default: none, nginx is the edge)
#   30-access-limits LOGIN_PATHS, ADMIN_PATHS, ADMIN_ALLOW (docs/security.md)
#   40-listen        TLS (off|on), HTTPS_PORT (default 8443)
#   50-static        STATIC_URL (default: the image's, from its build; /static/)
#   60-body-size     MAX_BODY_SIZE (default 10m)
#   70-csp           CONTENT_SECURITY_POLICY (default: this site only, no inline code; off: none)
set -eu
# No globbing: the lists are split on commas, and a "*" must stay a "*" (and be refused).
set -f
TEMPLATES=/etc/nginx/templates
OUT=/tmp/nginx

refuse() {
    echo "nginx-entrypoint: $*" >&2
    exit 64
}

# render TEMPLATE: the template on stdout, each ${NAME} in it replaced by the shell variable NAME. Values are
# validated by their step; a character sed would read as syntax is refused here too.
render() {
    script=""
    for name in $(grep -o '\${[A-Z_]*}' "$1" | sort -u | tr -d '${}'); do
        eval "value=\${$name-}"
        case "$value" in
        *'|'* | *'\'* | *'&'*) refuse "$name='$value' has a character no template can hold (| \\ &)" ;;
        esac
        script="$script s|\${$name}|$value|g;"
    done
    sed -e "$script" "$1"
}

# render_each TEMPLATE ENTRY...: the one-line template once per entry, as ${ENTRY}.
render_each() {
    template="$1"
    shift
    for ENTRY; do
        render "$TEMPLATES/$template"
    done
}

# install FILE: a rendered file replaces the old one whole (written beside it, then renamed).
install_rendered() {
    mv "$1.new" "$1"
}

# entries VALUE: a comma-separated list's entries, one per word; spaces are refused by each step first.
entries() {
    printf '%s' "$1" | tr ',' ' '
}

# A stop while the steps run ends the container at once. As the container's first process (PID 1, no init), the
# shell is sent the stop signal (QUIT, the image's STOPSIGNAL; TERM from Kubernetes) with no handler, and the
# kernel drops it: the steps went on, nginx started and ran until the stop timeout's SIGKILL (35-40 s). The
# trap runs once the step in hand has finished; nginx replaces the shell (exec) with its own handlers.
stopped() {
    echo "nginx-entrypoint: $1 before nginx started: stopping" >&2
    exit 0
}
trap 'stopped QUIT' QUIT
trap 'stopped TERM' TERM
trap 'stopped INT' INT

mkdir -p "$OUT/sites"
set +f
steps=$(echo /usr/local/lib/nginx-entrypoint.d/*.sh)
set -f
for step in $steps; do
    # shellcheck source=/dev/null
    . "$step"
done
exec "$@"
