# A node of the local test cluster (tools/cluster.py, `make cluster-up`): the project's base image running a Docker
# engine of its own, so that a few containers make a multi-node Swarm on one machine. A test rig, not a way to run
# production: every node shares this host's kernel, cores and disk (docs/cluster.md).
# Image names from defaults.env, which compose and tools/ pass as build arguments (no second default here).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

# Debian's engine and CLI (trixie: 26.1) and the iptables it programs for its networks. ca-certificates and
# e2fsprogs/xz are what the engine's package recommends for pulling and layer storage; procps for `ps` in a node.
# Packages come from the base image's Debian suite (defaults.env), which is the pin;
# exact versions would break the build at every Debian point release.
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends docker.io docker-cli iptables ca-certificates procps; \
    rm -rf /var/lib/apt/lists/*

COPY node-entrypoint.sh /usr/local/bin/node-entrypoint
# The engine's state: a volume of its own per node (tools/cluster.py), so overlay2 has a real filesystem under it.
VOLUME /var/lib/docker
# The engine stops its containers on TERM (their own grace periods, up to 35 s): a node's stop waits for them.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/node-entrypoint"]
