# TLS: off (default) or on. On: the public server on 8443 with TLS (certificate and key mounted at
# /etc/nginx/tls/tls.crt and tls.key), and 8080 only redirects to HTTPS; HTTPS_PORT is the port clients reach 8443
# on, for the redirect's Location (default 8443; 443 is left out). The listen lines of the public and default servers
# are chosen from the templates by TLS; the redirect server exists only with TLS=on.
set +f
rm -f "$OUT/sites/"*.conf
set -f
case "${TLS:-off}" in
off) mode=plain ;;
on)
    mode=tls
    for file in /etc/nginx/tls/tls.crt /etc/nginx/tls/tls.key; do
        [ -r "$file" ] || refuse "TLS=on needs $file, readable by uid $(id -u) (mount TLS_CERTS_DIR there)"
    done
    port="${HTTPS_PORT:-8443}"
    case "$port" in
    443) HTTPS_AUTHORITY='$host' ;;
    *[!0-9]* | '') refuse "HTTPS_PORT '$port' is not a port number" ;;
    *) HTTPS_AUTHORITY="\$host:$port" ;;
    esac
    render "$TEMPLATES/tls-https-redirect.conf" >"$OUT/sites/https-redirect.conf.new"
    install_rendered "$OUT/sites/https-redirect.conf"
    ;;
*) refuse "TLS='${TLS}': use on or off" ;;
esac
for listen in public-listen default-listen; do
    cp "$TEMPLATES/$mode-$listen.conf" "$OUT/$listen.conf.new"
    install_rendered "$OUT/$listen.conf"
done
