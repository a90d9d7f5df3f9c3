# TRUSTED_PROXIES: comma-separated addresses/CIDRs of load balancers in front of nginx (default: none, nginx is the
# edge). Only from these is X-Forwarded-For believed for the client's address (real_ip), and X-Forwarded-Proto for
# its scheme (conf.d/client-scheme.conf's geo). Rendered always, with no entry when no proxy is trusted.
proxies="${TRUSTED_PROXIES:-}"
for proxy in $(entries "$proxies"); do
    case "$proxy" in
    *[!0-9A-Fa-f.:/]*) refuse "TRUSTED_PROXIES entry '$proxy' is not an address or CIDR" ;;
    esac
done
case "$proxies" in
*[[:space:]]*) refuse "TRUSTED_PROXIES entry '$proxies' is not an address or CIDR" ;;
esac
# shellcheck disable=SC2046 # split on purpose: one entry per word
render_each real-ip.line $(entries "$proxies") >"$OUT/real-ip.conf.new"
install_rendered "$OUT/real-ip.conf"
# shellcheck disable=SC2046 # as above
render_each network.line $(entries "$proxies") >"$OUT/trusted-proxies.conf.new"
install_rendered "$OUT/trusted-proxies.conf"
