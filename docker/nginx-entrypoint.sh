#!/bin/sh
# nginx container start: render the names the public server answers to, then run nginx (the image's CMD).
# nginx's config is static files (the Kubernetes manifests mount them as ConfigMaps); the one value that differs
# per deployment, the server names, is written to /tmp (a tmpfs: the root filesystem is read-only) and included
# from sites/public.conf. Requests for any other Host get sites/default.conf's 421.
#   SERVER_NAMES  comma-separated host names (default: ALLOWED_HOSTS, else localhost,127.0.0.1), in Django's
#                 ALLOWED_HOSTS syntax where the two agree: "example.com", ".example.com" (and its subdomains).
#   TRUSTED_PROXIES  comma-separated addresses/CIDRs of load balancers in front of nginx (default: none, nginx is
#                 the edge). Only from these is X-Forwarded-For believed for the client's address (real_ip).
set -eu
names="${SERVER_NAMES:-${ALLOWED_HOSTS:-localhost,127.0.0.1}}"
list=""
for name in $(printf '%s' "$names" | tr ',' ' '); do
    case "$name" in
    *[!A-Za-z0-9._:\[\]-]*)
        echo "nginx-entrypoint: SERVER_NAMES entry '$name' is not a host name (a '*' is refused: list the names)" >&2
        exit 64
        ;;
    esac
    list="$list $name"
done
if [ -z "$list" ]; then
    echo "nginx-entrypoint: SERVER_NAMES is empty: the public server would answer no host" >&2
    exit 64
fi
mkdir -p /tmp/nginx
printf '# Rendered by nginx-entrypoint from SERVER_NAMES at container start.\nserver_name%s;\n' "$list" \
    >/tmp/nginx/server-names.conf

# The client's address: nginx's peer, unless that peer is a trusted proxy (then the last untrusted address in its
# X-Forwarded-For). Written always, empty when no proxy is trusted.
{
    echo "# Rendered by nginx-entrypoint from TRUSTED_PROXIES at container start."
    for proxy in $(printf '%s' "${TRUSTED_PROXIES:-}" | tr ',' ' '); do
        case "$proxy" in
        *[!0-9A-Fa-f.:/]*)
            echo "nginx-entrypoint: TRUSTED_PROXIES entry '$proxy' is not an address or CIDR" >&2
            exit 64
            ;;
        esac
        echo "set_real_ip_from $proxy;"
    done
} >/tmp/nginx/real-ip.conf.new
mv /tmp/nginx/real-ip.conf.new /tmp/nginx/real-ip.conf
exec "$@"
