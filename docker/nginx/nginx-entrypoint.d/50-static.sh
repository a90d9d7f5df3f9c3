# STATIC_URL: the URL prefix the app's static files are served under (default: the image's, set from the app's at
# build; /static/). A path with a leading and a trailing slash.
case "${STATIC_URL:=/static/}" in
/*/) ;;
*) refuse "STATIC_URL='$STATIC_URL' must be a path like /static/ (leading and trailing slash)" ;;
esac
case "$STATIC_URL" in
*[!A-Za-z0-9/._-]* | *//*) refuse "STATIC_URL='$STATIC_URL' has a character outside A-Z a-z 0-9 / . _ - (or a //)" ;;
esac
render "$TEMPLATES/static.conf" >"$OUT/static.conf.new"
install_rendered "$OUT/static.conf"
