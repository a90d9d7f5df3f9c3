# The single-container image, for platforms that want one container: supervisord runs nginx and uWSGI side by
# side, from the same configs and static files as the two-image topology. Everything runs as the `app` user:
# root is used only at build time (apt), and supervisord, uWSGI and nginx never need it at run time (nginx binds
# unprivileged ports, nothing switches users), so the container runs with no capabilities at all.
ARG APP_IMAGE=wsgi-chain/app:latest
ARG NGINX_IMAGE=wsgi-chain/nginx:latest

FROM ${NGINX_IMAGE} AS nginx

FROM ${APP_IMAGE}

# Root only for the apt install below; the last USER is the app user.
# hadolint ignore=DL3066
USER root
# Packages come from the base image's Debian suite (defaults.env), which is the pin;
# exact versions would break the build at every Debian point release.
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends nginx supervisor; \
    rm -rf /var/lib/apt/lists/*; \
    rm -rf /etc/nginx/sites-available /etc/nginx/sites-enabled /etc/nginx/conf.d /etc/nginx/snippets

# nginx's config exactly as the nginx image has it (STATIC_URL is rendered at start from the environment); the static
# files are the app image's own.
COPY --from=nginx /etc/nginx/ /etc/nginx/
COPY --from=nginx /usr/local/bin/nginx-health /usr/local/bin/nginx-health
COPY --from=nginx /usr/local/bin/nginx-entrypoint /usr/local/bin/nginx-entrypoint
COPY --from=nginx /usr/local/lib/nginx-entrypoint.d/ /usr/local/lib/nginx-entrypoint.d/
COPY docker/supervisord.conf /etc/supervisor/supervisord.conf
COPY docker/exit_on_fatal.py /usr/local/bin/exit-on-fatal
COPY docker/single-health.sh /usr/local/bin/single-health

# The user is created in this image (or its base) with a fixed uid, so the name resolves.
# hadolint ignore=DL3066
USER app
EXPOSE 8080
# supervisord stops its programs gracefully on TERM: nginx with QUIT, then uWSGI with TERM (graceful).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=3 CMD ["single-health"]
ENTRYPOINT ["supervisord", "-c", "/etc/supervisor/supervisord.conf"]
CMD []

ARG VCS_REF=unknown
ARG SOURCE_URL=unknown
ARG APP_VERSION=unknown
ARG UWSGI_CONFIG_VERSION=unknown
ARG NGINX_CONFIG_VERSION=unknown
LABEL org.opencontainers.image.title="wsgi-chain single" \
      org.opencontainers.image.description="nginx and uWSGI under supervisord in one container" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${APP_VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      io.wsgi-chain.app.version="${APP_VERSION}" \
      io.wsgi-chain.uwsgi-config.version="${UWSGI_CONFIG_VERSION}" \
      io.wsgi-chain.nginx-config.version="${NGINX_CONFIG_VERSION}"
