# The benchmark's load generator: Debian's wrk on the project's base image, on the stack's own network, so the
# load never goes through docker's userland proxy. It idles until the harness runs wrk in it with docker exec.
# Image names from defaults.env, which compose and tools/ pass as build arguments (no second default here).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

# Packages come from the base image's Debian suite (defaults.env), which is the pin;
# exact versions would break the build at every Debian point release.
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends wrk; \
    rm -rf /var/lib/apt/lists/*

# The reporter, and the writer's script that loads it from the same folder.
COPY wrk/report.lua wrk/post.lua /usr/local/share/wrk/
# Debian's nobody exists in every Debian image.
# hadolint ignore=DL3066
USER nobody
CMD ["sleep", "infinity"]
