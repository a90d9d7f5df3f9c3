#!/bin/sh
# A cluster node's engine (deploy/cluster/node.Dockerfile). Each node puts its containers' cgroups under a parent
# named after the node, so that the nodes sharing this host's cgroup tree never collide, and tools/cluster.py can
# remove what a killed node leaves there. The parent sits beside the node's own cgroup (where the host's engine puts
# its containers: /docker with cgroupfs), so a node's containers weigh on the host's CPU as one container does; at
# the top of the tree, each node weighed as much as all of the host's containers together. NODE_API_DIR, when set,
# gets a second API socket: the host's CLI reaches the manager's engine through it (a bind-mounted directory only
# root reads), never over TCP.
set -eu
node="$(hostname)"
case "$node" in
*[!A-Za-z0-9_.-]*) echo "node-entrypoint: hostname $node is no cgroup name" >&2; exit 78 ;;
esac
# Runtime state of an engine that was killed (docker kill, a host crash): its pid file names PID 1, which is this
# engine again after a restart, and would keep it from starting. The engine's real state is in /var/lib/docker.
rm -rf /var/run/docker.pid /var/run/docker
# This node's cgroup, from /proc/self/cgroup: v1, the first line of a cpu controller (cpuset, cpu or cpuacct: Docker
# gives a container the same path in each, "4:cpu,cpuacct:/docker/<id>"); v2, its one line ("0::/<path>").
own="$(sed -n -e 's/^[0-9]*:[^:]*cpu[^:]*:\(.*\)$/\1/p' -e 's/^0::\(.*\)$/\1/p' /proc/self/cgroup | head -n 1)"
parent="$(dirname "${own:-/}")"
set -- --cgroup-parent="${parent%/}/$node" -H unix:///var/run/docker.sock
if [ -n "${NODE_API_DIR:-}" ]; then
    [ -d "$NODE_API_DIR" ] || { echo "node-entrypoint: NODE_API_DIR=$NODE_API_DIR is no directory" >&2; exit 78; }
    set -- "$@" -H "unix://$NODE_API_DIR/docker.sock"
fi
exec dockerd "$@"
