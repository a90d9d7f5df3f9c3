#!/bin/sh
# listener-rename NEW PATH: the listener's last step before it serves (uwsgi/listener.ini's master-start hook): put
# its new socket NEW in the place of the old one at PATH, nginx's, in one rename.
# The app server on the old socket stops once PATH's time moves on (uwsgi.ini's touch-exec), and uWSGI compares whole
# seconds: a new socket bound in the same second as the old one would go unseen, and nginx would queue its requests
# on a socket no app server serves. So NEW is dated one second past the old socket when its own time is not later.
set -eu
new=$1 path=$2
old=$(stat -c %Y "$path" 2>/dev/null || echo 0)
if [ "$(stat -c %Y "$new")" -le "$old" ]; then
    touch -m -d "@$((old + 1))" "$new"
fi
exec mv -f "$new" "$path"
