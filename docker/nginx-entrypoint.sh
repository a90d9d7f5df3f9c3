#!/bin/sh
# nginx container start: render the names the public server answers to, then run nginx (the image's CMD).
# nginx's config is static files (the Kubernetes manifests mount them as ConfigMaps); the one value that differs
# per deployment, the server names, is written to /tmp (a tmpfs: the root filesystem is read-only) and included
# from sites/public.conf. Requests for any other Host get sites/default.conf's 421.
#   SERVER_NAMES  comma-separated host names (default: ALLOWED_HOSTS, else localhost,127.0.0.1), in Django's
#                 ALLOWED_HOSTS syntax where the two agree: "example.com", ".example.com" (and its subdomains).
#   TRUSTED_PROXIES  comma-separated addresses/CIDRs of load balancers in front of nginx (default: none, nginx is
#                 the edge). Only from these is X-Forwarded-For believed for the client's address (real_ip).
#   TLS           off (default) or on: the public server on 8443 with TLS (certificate and key mounted at
#                 /etc/nginx/tls/tls.crt and tls.key); 8080 then only redirects to HTTPS.
#   HTTPS_PORT    the port clients reach 8443 on, for the redirect's Location (default 8443; 443 is left out).
#   LOGIN_PATHS   comma-separated paths rate limited per client address (default /admin/login/,/api-auth/login/).
#   ADMIN_PATHS   comma-separated paths only ADMIN_ALLOW's networks reach (default /admin/).
#   ADMIN_ALLOW   comma-separated addresses/CIDRs allowed on ADMIN_PATHS (default: none listed, everyone allowed).
#                 A path is a prefix ("/admin/": everything under it), or with a leading "=" one exact path.
set -eu
# No globbing: the lists below are split on commas, and a "*" must stay a "*" (and be refused).
set -f
names="${SERVER_NAMES:-${ALLOWED_HOSTS:-localhost,127.0.0.1}}"
case "$names" in
*[[:space:]]*)
    echo "nginx-entrypoint: SERVER_NAMES='$names': separate the names with commas, no spaces" >&2
    exit 64
    ;;
esac
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
        *[!0-9A-Fa-f.:/]* | *[[:space:]]*)
            echo "nginx-entrypoint: TRUSTED_PROXIES entry '$proxy' is not an address or CIDR" >&2
            exit 64
            ;;
        esac
        echo "set_real_ip_from $proxy;"
    done
} >/tmp/nginx/real-ip.conf.new
mv /tmp/nginx/real-ip.conf.new /tmp/nginx/real-ip.conf

# Access limits: data lines only (map and geo entries) for conf.d/login-limit.conf and conf.d/admin-allow.conf,
# which hold the directives and their reasons.
refuse() {
    echo "nginx-entrypoint: $*" >&2
    exit 64
}

# path_entries NAME VALUE: one map entry per path of a comma-separated list; a prefix as an anchored regex, an
# exact path ("=/path") as a string. Only characters that need no quoting in a map key; "." is escaped for the
# regex. Paths are compared with nginx's normalised $uri, so one that is not normalised could never match.
path_entries() {
    case "$2" in
    *[[:space:]]*) refuse "$1='$2': separate the paths with commas, no spaces" ;;
    esac
    count=0
    for entry in $(printf '%s' "$2" | tr ',' ' '); do
        path="${entry#=}"
        case "$path" in
        /*) ;;
        *) refuse "$1 entry '$entry' is not a path: it must start with / (or =/ for one exact path)" ;;
        esac
        case "$path" in
        *[!A-Za-z0-9/._~-]*) refuse "$1 entry '$entry' has a character outside A-Z a-z 0-9 / . _ ~ -" ;;
        *//* | */./* | */../* | */. | */..) refuse "$1 entry '$entry' is not a normalised path (// . ..)" ;;
        esac
        if [ "$path" = "$entry" ]; then
            printf '"~^%s" 1;\n' "$(printf '%s' "$path" | sed 's/\./\\./g')"
        else
            printf '"%s" 1;\n' "$path"
        fi
        count=$((count + 1))
    done
    [ "$count" -gt 0 ] || refuse "$1='$2' lists no path"
}

# is_network ADDRESS[/BITS]: an IPv4 or IPv6 address, with an optional prefix length in range.
is_network() {
    network="$1"
    address="${network%/*}"
    case "$address" in
    *:*)
        max=128
        case "$address" in *[!0-9A-Fa-f:]* | *:::* | *::*::*) return 1 ;; esac
        groups=$(printf '%s' "$address" | tr ':' ' ')
        set -- $groups
        [ "$#" -le 8 ] || return 1
        for group; do [ "${#group}" -le 4 ] || return 1; done
        ;;
    *)
        max=32
        case "$address" in *[!0-9.]* | .* | *. | *..*) return 1 ;; esac
        octets=$(printf '%s' "$address" | tr '.' ' ')
        set -- $octets
        [ "$#" -eq 4 ] || return 1
        for octet; do [ "${#octet}" -le 3 ] && [ "$octet" -le 255 ] || return 1; done
        ;;
    esac
    case "$network" in
    */*) bits="${network##*/}" ;;
    *) return 0 ;;
    esac
    case "$bits" in '' | *[!0-9]*) return 1 ;; esac
    [ "${#bits}" -le 3 ] && [ "$bits" -le "$max" ]
}

{
    echo "# Rendered by nginx-entrypoint from LOGIN_PATHS at container start."
    path_entries LOGIN_PATHS "${LOGIN_PATHS:-/admin/login/,/api-auth/login/}"
} >/tmp/nginx/login-paths.conf.new
# ADMIN_ALLOW empty (the default) allows everyone: then no path is restricted, though ADMIN_PATHS is still checked.
allow="${ADMIN_ALLOW:-}"
admin_paths=$(path_entries ADMIN_PATHS "${ADMIN_PATHS:-/admin/}") || exit 64
{
    echo "# Rendered by nginx-entrypoint from ADMIN_PATHS at container start (none while ADMIN_ALLOW is empty)."
    [ -z "$allow" ] || echo "$admin_paths"
} >/tmp/nginx/admin-paths.conf.new
{
    echo "# Rendered by nginx-entrypoint from ADMIN_ALLOW at container start."
    case "$allow" in
    *[[:space:]]*) refuse "ADMIN_ALLOW='$allow': separate the networks with commas, no spaces" ;;
    esac
    count=0
    for network in $(printf '%s' "$allow" | tr ',' ' '); do
        is_network "$network" || refuse "ADMIN_ALLOW entry '$network' is not an address or CIDR"
        echo "$network 1;"
        count=$((count + 1))
    done
    [ -z "$allow" ] || [ "$count" -gt 0 ] || refuse "ADMIN_ALLOW='$allow' lists no network (empty allows everyone)"
} >/tmp/nginx/admin-allow.conf.new
for file in login-paths admin-paths admin-allow; do
    mv "/tmp/nginx/$file.conf.new" "/tmp/nginx/$file.conf"
done

# Plain HTTP, or TLS with HTTP redirecting to it: the listen lines of the public and default servers, and the
# redirect server, in /tmp/nginx/ (included from sites/public.conf, sites/default.conf and nginx.conf).
mkdir -p /tmp/nginx/sites
rm -f /tmp/nginx/sites/*.conf
header="# Rendered by nginx-entrypoint from TLS=${TLS:-off} at container start."
case "${TLS:-off}" in
off)
    printf '%s\nlisten 8080;\n' "$header" >/tmp/nginx/public-listen.conf
    printf '%s\n' "$header" >/tmp/nginx/default-listen.conf
    ;;
on)
    for file in /etc/nginx/tls/tls.crt /etc/nginx/tls/tls.key; do
        if [ ! -r "$file" ]; then
            echo "nginx-entrypoint: TLS=on needs $file, readable by uid $(id -u) (mount TLS_CERTS_DIR there)" >&2
            exit 64
        fi
    done
    port="${HTTPS_PORT:-8443}"
    case "$port" in
    443) authority='$host' ;;
    *[!0-9]* | '') echo "nginx-entrypoint: HTTPS_PORT '$port' is not a port number" >&2; exit 64 ;;
    *) authority="\$host:$port" ;;
    esac
    printf '%s\nlisten 8443 ssl;\ninclude /etc/nginx/snippets/tls.conf;\n' "$header" >/tmp/nginx/public-listen.conf
    printf '%s\nlisten 8443 ssl default_server;\ninclude /etc/nginx/snippets/tls.conf;\n' "$header" \
        >/tmp/nginx/default-listen.conf
    cat >/tmp/nginx/sites/https-redirect.conf <<EOF_REDIRECT
$header
# Plain HTTP for the served names only redirects to HTTPS (308: the method and body are kept).
server {
    listen 8080;
    include /tmp/nginx/server-names.conf;
    include /etc/nginx/snippets/security-headers.conf;
    include /etc/nginx/snippets/errors.conf;
    location / {
        return 308 https://$authority\$request_uri;
    }
}
EOF_REDIRECT
    ;;
*)
    echo "nginx-entrypoint: TLS='${TLS}': use on or off" >&2
    exit 64
    ;;
esac
exec "$@"
