# SERVER_NAMES: comma-separated host names (default: ALLOWED_HOSTS, else localhost,127.0.0.1), in Django's
# ALLOWED_HOSTS syntax where the two agree: "example.com", ".example.com" (and its subdomains). Requests for any other
# Host get sites/default.conf's 421.
names="${SERVER_NAMES:-${ALLOWED_HOSTS:-localhost,127.0.0.1}}"
case "$names" in
*[[:space:]]*) refuse "SERVER_NAMES='$names': separate the names with commas, no spaces" ;;
esac
SERVER_NAMES=""
for name in $(entries "$names"); do
    case "$name" in
    *[!A-Za-z0-9._:\[\]-]*) refuse "SERVER_NAMES entry '$name' is not a host name (a '*' is refused: list the names)" ;;
    esac
    SERVER_NAMES="${SERVER_NAMES:+$SERVER_NAMES }$name"
done
[ -n "$SERVER_NAMES" ] || refuse "SERVER_NAMES is empty: the public server would answer no host"
render "$TEMPLATES/server-names.conf" >"$OUT/server-names.conf.new"
install_rendered "$OUT/server-names.conf"
