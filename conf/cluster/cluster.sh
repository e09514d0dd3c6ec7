#!/usr/bin/env bash
# The multi-node demo of the redis handler, all on loopback:
#   one redis-server, two mod_wsock nodes sharing it, and a front Apache
#   (mod_proxy_balancer + mod_proxy_wstunnel, sticky sessions) before them.
#
#   conf/cluster/cluster.sh start     build if need be, start everything
#   conf/cluster/cluster.sh stop      stop everything
#   conf/cluster/cluster.sh kill N    kill node N (1 or 2) hard, to watch clients move
#
# Then: ws://127.0.0.1:$FRONT/chat?room=NAME (see docs/redis.md#the-cluster-demo).
# Ports: WSOCK_CLUSTER_FRONT (8088), _NODE1 (8181), _NODE2 (8182), _REDIS (6380);
# everything lives in WSOCK_CLUSTER_DIR (/var/tmp/mod_wsock-cluster).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
dir=${WSOCK_CLUSTER_DIR:-/var/tmp/mod_wsock-cluster}
front=${WSOCK_CLUSTER_FRONT:-8088}
node1=${WSOCK_CLUSTER_NODE1:-8181}
node2=${WSOCK_CLUSTER_NODE2:-8182}
redis=${WSOCK_CLUSTER_REDIS:-6380}
harness=(/usr/bin/python3 "$repo/tests/harness/apache_instance.py")

stop_all() {
    for n in front node1 node2; do
        [[ -d "$dir/$n" ]] && "${harness[@]}" stop --dir "$dir/$n" >/dev/null 2>&1 || true
    done
    redis-cli -p "$redis" shutdown nosave >/dev/null 2>&1 || true
}

case "${1:-}" in
start) ;;
stop) stop_all; echo "cluster stopped"; exit 0 ;;
kill)
    pid=$(cat "$dir/node${2:?node 1 or 2}/run/httpd.pid")
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
    echo "node$2 killed"; exit 0 ;;
*) sed -n '2,14p' "$0"; exit 2 ;;
esac

[[ -f .libs/mod_wsock.so ]] || { scripts/install-deps.sh; scripts/build.sh; }
command -v redis-server >/dev/null || scripts/install-deps.sh
stop_all
mkdir -p "$dir/redis"
redis-server --port "$redis" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir/redis" --daemonize yes --logfile "$dir/redis/redis.log"
for _ in $(seq 50); do redis-cli -p "$redis" ping >/dev/null 2>&1 && break; sleep 0.1; done

sed "s|@REDIS_PORT@|$redis|g" conf/cluster/node.conf.in > "$dir/node.conf"
sed -e "s|@MODULES@|/usr/lib/apache2/modules|g" -e "s|@NODE1@|$node1|g" \
    -e "s|@NODE2@|$node2|g" conf/cluster/front.conf.in > "$dir/front.conf"
"${harness[@]}" start --dir "$dir/node1" --port "$node1" --conf "$dir/node.conf" >/dev/null
"${harness[@]}" start --dir "$dir/node2" --port "$node2" --conf "$dir/node.conf" >/dev/null
"${harness[@]}" start --dir "$dir/front" --port "$front" --conf "$dir/front.conf" >/dev/null
echo "cluster running: ws://127.0.0.1:$front/chat?room=NAME"
echo "  nodes ws://127.0.0.1:$node1/chat and :$node2/chat, redis 127.0.0.1:$redis"
echo "  logs: $dir/{front,node1,node2}/logs/error.log   stop: conf/cluster/cluster.sh stop"
