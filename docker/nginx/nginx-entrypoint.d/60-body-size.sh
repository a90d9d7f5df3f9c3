# MAX_BODY_SIZE: the largest request body nginx takes, in nginx's size syntax: a number of bytes, or of k, m or g
# (default 10m: forms with attachments; nginx's own default is 1m). Larger bodies get a 413 (an announced one before
# any byte of it is read). 0, nginx's "no limit", is refused: nginx holds each body whole on disk before the app reads
# it.
MAX_BODY_SIZE="${MAX_BODY_SIZE:-10m}"
case "$MAX_BODY_SIZE" in
0*) refuse "MAX_BODY_SIZE='$MAX_BODY_SIZE': a size starts with 1-9 (0 would take bodies of any size): use e.g. 100m" ;;
*[!0-9kKmMgG]* | [kKmMgG]* | *[kKmMgG]?*) refuse "MAX_BODY_SIZE='$MAX_BODY_SIZE' is not a size: use e.g. 10m, 512k or 1g" ;;
esac
render "$TEMPLATES/body-size.conf" >"$OUT/body-size.conf.new"
install_rendered "$OUT/body-size.conf"
