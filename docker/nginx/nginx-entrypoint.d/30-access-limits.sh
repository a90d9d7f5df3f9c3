# Access limits (docs/security.md): map and geo entries for conf.d/login-limit.conf and conf.d/admin-allow.conf.
#   LOGIN_PATHS  comma-separated paths rate limited per client address (default /admin/login/,/api-auth/login/)
#   ADMIN_PATHS  comma-separated paths only ADMIN_ALLOW's networks reach (default /admin/)
#   ADMIN_ALLOW  comma-separated addresses/CIDRs allowed on ADMIN_PATHS (default: none listed, everyone allowed)
# A path is a prefix ("/admin/": everything under it), or with a leading "=" one exact path.

# path_entries NAME VALUE: one map entry per path: a prefix as an anchored regex (path-prefix.line, "." as [.]), an
# exact path as a string (path-exact.line). Only characters that need no quoting in a map key. Paths are compared
# with nginx's normalised $uri, so one that is not normalised could never match, and is refused.
path_entries() {
    case "$2" in
    *[[:space:]]*) refuse "$1='$2': separate the paths with commas, no spaces" ;;
    esac
    count=0
    for entry in $(entries "$2"); do
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
            render_each path-prefix.line "$(printf '%s' "$path" | sed 's/[.]/[.]/g')"
        else
            render_each path-exact.line "$path"
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
        # shellcheck disable=SC2086 # split on purpose
        set -- $groups
        [ "$#" -le 8 ] || return 1
        for group; do [ "${#group}" -le 4 ] || return 1; done
        ;;
    *)
        max=32
        case "$address" in *[!0-9.]* | .* | *. | *..*) return 1 ;; esac
        octets=$(printf '%s' "$address" | tr '.' ' ')
        # shellcheck disable=SC2086 # split on purpose
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

path_entries LOGIN_PATHS "${LOGIN_PATHS:-/admin/login/,/api-auth/login/}" >"$OUT/login-paths.conf.new"
# ADMIN_ALLOW empty (the default) allows everyone: then no path is restricted, though ADMIN_PATHS is still checked.
allow="${ADMIN_ALLOW:-}"
admin_paths=$(path_entries ADMIN_PATHS "${ADMIN_PATHS:-/admin/}") || exit 64
[ -z "$allow" ] || printf '%s\n' "$admin_paths" >"$OUT/admin-paths.conf.new"
[ -n "$allow" ] || : >"$OUT/admin-paths.conf.new"
case "$allow" in
*[[:space:]]*) refuse "ADMIN_ALLOW='$allow': separate the networks with commas, no spaces" ;;
esac
count=0
for network in $(entries "$allow"); do
    is_network "$network" || refuse "ADMIN_ALLOW entry '$network' is not an address or CIDR"
    count=$((count + 1))
done
[ -z "$allow" ] || [ "$count" -gt 0 ] || refuse "ADMIN_ALLOW='$allow' lists no network (empty allows everyone)"
# shellcheck disable=SC2046 # split on purpose: one entry per word
render_each network.line $(entries "$allow") >"$OUT/admin-allow.conf.new"
for file in login-paths admin-paths admin-allow; do
    install_rendered "$OUT/$file.conf"
done
