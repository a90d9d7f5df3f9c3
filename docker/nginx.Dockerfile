# The nginx image: nginx from the base's packages, this repo's config and the app's static files, running as an
# unprivileged user. The static files are copied from the app image at build time, so each nginx image serves
# exactly the assets of the app version it was built with: no shared volume to go stale, and a read-only root.
ARG BASE_IMAGE=debian:trixie-slim
ARG APP_IMAGE=wsgi-chain/app:latest

FROM ${APP_IMAGE} AS app

FROM ${BASE_IMAGE}

# procps gives ops (and the tests) ps and top. Debian's default sites and snippets are replaced by ours.
# Packages come from the base image's Debian suite (defaults.env), which is the pin;
# exact versions would break the build at every Debian point release.
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends nginx procps; \
    rm -rf /var/lib/apt/lists/*; \
    rm -rf /etc/nginx/sites-available /etc/nginx/sites-enabled /etc/nginx/conf.d /etc/nginx/snippets

# The nginx user joins gid 10001, the group of the uWSGI socket (mode 660), and nothing else.
RUN set -eux; \
    groupadd --system --gid 10001 uwsgi-socket; \
    groupadd --system --gid 10101 nginx; \
    useradd --system --uid 10101 --gid nginx --groups uwsgi-socket \
        --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin nginx

COPY --from=app /srv/static /srv/static

COPY nginx/nginx.conf /etc/nginx/nginx.conf
COPY nginx/conf.d/ /etc/nginx/conf.d/
COPY nginx/snippets/ /etc/nginx/snippets/
COPY nginx/sites/ /etc/nginx/sites/
COPY nginx/templates/ /etc/nginx/templates/
COPY docker/nginx-health.sh /usr/local/bin/nginx-health
COPY docker/nginx-entrypoint.sh /usr/local/bin/nginx-entrypoint
COPY docker/nginx-entrypoint.d/ /usr/local/lib/nginx-entrypoint.d/

# The URL prefix the app's static files are served under (Django's STATIC_URL, or STATIC_URL for other apps): the
# default of the entrypoint's STATIC_URL step, which renders templates/static.conf at start.
ARG STATIC_URL=/static/
ENV STATIC_URL=${STATIC_URL}

# The user is created in this image (or its base) with a fixed uid, so the name resolves.
# hadolint ignore=DL3066
USER nginx
EXPOSE 8080
# QUIT: finish the requests in flight, then exit (TERM would drop them).
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 CMD ["nginx-health"]
# Renders the per-deployment config (nginx/templates/, steps in nginx-entrypoint.d/) into /tmp, then runs the CMD.
ENTRYPOINT ["nginx-entrypoint"]
# -e stderr: the compiled-in error log path is not writable by a non-root master.
CMD ["nginx", "-e", "stderr", "-g", "daemon off;"]

ARG VCS_REF=unknown
ARG SOURCE_URL=unknown
ARG NGINX_CONFIG_VERSION=unknown
ARG APP_VERSION=unknown
LABEL org.opencontainers.image.title="wsgi-chain nginx" \
      org.opencontainers.image.description="nginx front proxy passing requests to uWSGI over the uwsgi protocol" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${NGINX_CONFIG_VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      io.wsgi-chain.nginx-config.version="${NGINX_CONFIG_VERSION}" \
      io.wsgi-chain.static.app-version="${APP_VERSION}"
