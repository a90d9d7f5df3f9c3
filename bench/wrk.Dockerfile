# The benchmark's load generator: Debian's wrk on the project's base image, on the stack's own network, so the
# load never goes through docker's userland proxy. It idles until the harness runs wrk in it with docker exec.
ARG BASE_IMAGE=debian:trixie-slim
FROM ${BASE_IMAGE}

RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends wrk; \
    rm -rf /var/lib/apt/lists/*

COPY wrk/report.lua /usr/local/share/wrk/report.lua
USER nobody
CMD ["sleep", "infinity"]
