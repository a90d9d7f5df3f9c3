# STATIC_URL: the URL prefix the app's static files are served under (default: the image's, set from the app's at
# build; /static/). A path with a leading and a trailing slash.
case "${STATIC_URL:=/static/}" in
/*/) ;;
*) refuse "STATIC_URL='$STATIC_URL' must be a path like /static/ (leading and trailing slash)" ;;
esac
case "$STATIC_URL" in
*[!A-Za-z0-9/._-]* | *//*) refuse "STATIC_URL='$STATIC_URL' has a character outside A-Z a-z 0-9 / . _ - (or a //)" ;;
esac
# NGINX_DEV_STATIC (`make dev` only, tools/dev.py): the working copy's static directories mounted here, in the order the
# development location (nginx/dev/static.conf) looks in them before the collected files, each its own try.
DEV_STATIC_TRY=""
for directory in ${NGINX_DEV_STATIC:-}; do
    case "$directory" in
    /srv/dev-static/[0-9] | /srv/dev-static/[0-9][0-9]) ;;
    *) refuse "NGINX_DEV_STATIC: '$directory' is not one of make dev's /srv/dev-static/<n> directories" ;;
    esac
    DEV_STATIC_TRY="$DEV_STATIC_TRY$(render_each static-try.line "$directory") "
done
# An app with no static files for nginx (neither Django's nor STATIC_DIR's: the marker docker/app/collect_static.py
# leaves) gets no static location, and STATIC_URL's paths reach it: nginx answered its own 404 there before, and an
# app serving /static/ itself (Flask's default) lost its files.
if [ -e /srv/static/.no-static-files ]; then
    : >"$OUT/static.conf.new"
else
    render "$TEMPLATES/static.conf" >"$OUT/static.conf.new"
fi
install_rendered "$OUT/static.conf"
