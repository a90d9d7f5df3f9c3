# PostgreSQL for the local test cluster (tools/cluster.py), from the base image's Debian suite: this machine has no
# registry to pull the official image from. It follows the official image's contract as compose.yaml's `postgres`
# service uses it (POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD; data in /var/lib/postgresql/data; pg_isready), so
# the stack file is the same whichever image runs. A real deployment uses the official image or a managed server.
# Image names from defaults.env, which compose and tools/ pass as build arguments (no second default here).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

# Packages come from the base image's Debian suite (defaults.env), which is the pin (trixie: PostgreSQL 17);
# exact versions would break the build at every Debian point release.
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends postgresql-17; \
    rm -rf /var/lib/apt/lists/*; \
    install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data

# The server's own binaries first (Debian keeps initdb, pg_ctl and postgres off the PATH).
ENV PATH=/usr/lib/postgresql/17/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
VOLUME /var/lib/postgresql/data
EXPOSE 5432
# Smart shutdown waits for clients to leave; fast (INT) rolls back their transactions and stops at once.
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]
