# The app image: Python from the base, a virtualenv with uWSGI and the app's pinned requirements, the app, its
# static files and the uWSGI config. Layers go from slowest-changing to fastest: an app change never reinstalls
# dependencies, a uWSGI config change never rebuilds the app.
ARG BASE_IMAGE=debian:trixie-slim

# ---- builder: the only stage with a compiler -------------------------------------------------------------------
FROM ${BASE_IMAGE} AS builder

# Packages come from the base image's Debian suite (defaults.env), which is the pin;
# exact versions would break the build at every Debian point release.
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        build-essential ca-certificates libpcre2-dev python3-dev python3-venv; \
    rm -rf /var/lib/apt/lists/*

# pip trusts the system store, which holds the base image's extra CA certificates (TLS-inspecting proxies).
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_COMPILE=0
RUN python3 -m venv /opt/venv

COPY uwsgi/requirements.txt /tmp/uwsgi-requirements.txt
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/venv/bin/pip install -r /tmp/uwsgi-requirements.txt

ARG APP_SRC=app
COPY ${APP_SRC}/requirements.txt /tmp/app-requirements.txt
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/venv/bin/pip install -r /tmp/app-requirements.txt

# ---- runtime ---------------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE}

# python3 runs the app and libpython (the suite's version) is what uWSGI embeds; libpcre2 serves uWSGI's
# routing; procps gives ops (and the tests) ps and top.
# Packages come from the base image's Debian suite (defaults.env), which is the pin;
# exact versions would break the build at every Debian point release.
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates libpcre2-8-0 procps python3; \
    apt-get install -y --no-install-recommends "libpython$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"; \
    rm -rf /var/lib/apt/lists/*

# A fixed uid/gid: nginx joins gid 10001 to reach the uWSGI socket (mode 660).
RUN set -eux; \
    groupadd --system --gid 10001 app; \
    useradd --system --uid 10001 --gid app --home-dir /srv/app --no-create-home --shell /usr/sbin/nologin app; \
    install -d -o app -g app -m 0750 /run/uwsgi /run/uwsgi-zerg /var/lib/app

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_DIR=/srv/app \
    STATIC_ROOT=/srv/static

COPY --from=builder /opt/venv /opt/venv
# The requirements the virtualenv was installed from: `make dev`'s watcher (docker/dev_watch.py) compares the working
# copy's with them and refuses to reload onto stale dependencies.
COPY --from=builder /tmp/app-requirements.txt /opt/venv/app-requirements.txt

# The app, owned by root and read-only to the user it runs as.
ARG APP_SRC=app
ARG WSGI_MODULE=microposts.wsgi:application
ARG DJANGO_SETTINGS_MODULE=microposts.settings
ARG STATIC_DIR=
# The app's own health routes, when it has them (uwsgi-health): empty means none, and liveness accepts any answer
# below 500. tools/stack.py sets the default app's /healthz and /readyz; another app names its own, or none.
ARG HEALTHCHECK_PATH=
ARG READINESS_PATH=
ENV WSGI_MODULE=${WSGI_MODULE} \
    DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE} \
    HEALTHCHECK_PATH=${HEALTHCHECK_PATH} \
    READINESS_PATH=${READINESS_PATH} \
    SQLITE_PATH=/var/lib/app/db.sqlite3
COPY ${APP_SRC}/ /srv/app/
COPY docker/collect-static.sh /usr/local/bin/collect-static
RUN set -eux; \
    python3 -m compileall -q /srv/app; \
    STATIC_DIR="${STATIC_DIR}" collect-static

# The uWSGI config and the container's glue come last: changing them rebuilds nothing above.
COPY uwsgi/uwsgi.ini /etc/uwsgi/uwsgi.ini
COPY uwsgi/listener.ini /etc/uwsgi/listener.ini
COPY docker/app-entrypoint.sh /usr/local/bin/app-entrypoint
COPY docker/uwsgi_health.py /usr/local/bin/uwsgi-health
COPY docker/check_app.py /usr/local/bin/check-app
# uwsgi-ctl and the metrics exporter share one stats client: both modules in one directory, run through links.
COPY docker/uwsgi_ctl.py docker/metrics_exporter.py /usr/local/lib/wsgi-chain/
# The WSGI entry point uwsgi.ini loads: the app named by WSGI_MODULE, with field values trimmed as RFC 9110 reads them.
COPY docker/wsgi_entry.py /usr/local/lib/wsgi-chain/
RUN ln -s /usr/local/lib/wsgi-chain/uwsgi_ctl.py /usr/local/bin/uwsgi-ctl; \
    ln -s /usr/local/lib/wsgi-chain/metrics_exporter.py /usr/local/bin/metrics-exporter

# The user is created in this image (or its base) with a fixed uid, so the name resolves.
# hadolint ignore=DL3066
USER app
WORKDIR /srv/app
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 CMD ["uwsgi-health"]
ENTRYPOINT ["app-entrypoint"]
CMD ["serve"]

ARG VCS_REF=unknown
ARG SOURCE_URL=unknown
ARG APP_VERSION=unknown
ARG UWSGI_CONFIG_VERSION=unknown
LABEL org.opencontainers.image.title="wsgi-chain app" \
      org.opencontainers.image.description="uWSGI master and workers serving a WSGI app over a unix socket" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${APP_VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      io.wsgi-chain.app.version="${APP_VERSION}" \
      io.wsgi-chain.uwsgi-config.version="${UWSGI_CONFIG_VERSION}"
