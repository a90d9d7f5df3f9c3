# STATIC_URL: the URL prefix the app's static files are served under (default: the image's, set from the app's at
# build; /static/). A path with a leading and a trailing slash.
case "${STATIC_URL:=/static/}" in
/*/) ;;
*) refuse "STATIC_URL='$STATIC_URL' must be a path like /static/ (leading and trailing slash)" ;;
esac
case "$STATIC_URL" in
*[!A-Za-z0-9/._-]* | *//*) refuse "STATIC_URL='$STATIC_URL' has a character outside A-Z a-z 0-9 / . _ - (or a //)" ;;
esac
# An app with no static files for nginx (neither Django's nor STATIC_DIR's: the marker docker/app/collect_static.py
# leaves) gets no static location, and STATIC_URL's paths reach it: nginx answered its own 404 there before, and an
# app serving /static/ itself (Flask's default) lost its files.
if [ -e /srv/static/.no-static-files ]; then
    : >"$OUT/static.conf.new"
else
    render "$TEMPLATES/static.conf" >"$OUT/static.conf.new"
fi
install_rendered "$OUT/static.conf"
