# CONTENT_SECURITY_POLICY: the Content-Security-Policy nginx adds to a response whose app sent none (nginx's own
# errors too; conf.d/security-headers.conf). Default: scripts, styles, images and forms from this site only, no
# inline script, style or event handler (the default app and Django's admin use none; data: images for the admin's
# small icons). `off`: nginx adds none, for an app whose pages need more and that sends no policy of its own (nginx
# sends none by default). Characters that would end the config's quoted value are refused.
CSP_DEFAULT="default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
CONTENT_SECURITY_POLICY="${CONTENT_SECURITY_POLICY:-$CSP_DEFAULT}"
case "$CONTENT_SECURITY_POLICY" in
off) CSP_VALUE="" ;;
*[!\ -~]* | *'"'* | *'$'* | *'{'* | *'}'* | *'|'* | *'\'* | *'&'*)
    refuse "CONTENT_SECURITY_POLICY='$CONTENT_SECURITY_POLICY': a policy is printable ASCII without \" \$ { } | \\ &: use e.g. \"default-src 'self'\", or off" ;;
*) CSP_VALUE="$CONTENT_SECURITY_POLICY" ;;
esac
render "$TEMPLATES/csp.map" >"$OUT/csp.map.new"
install_rendered "$OUT/csp.map"
