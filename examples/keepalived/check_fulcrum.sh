#!/bin/sh
# keepalived's health check for the Fulcrum on this host: exit 0 when it is
# alive, anything else when it is not (keepalived.conf counts `fall` failures
# in a row before it gives up the VIP).
#
# /healthz answers 200 while the process is alive and never needs the admin
# token. It deliberately is not /readyz: /readyz is 503 while a pool has no
# available backend, and both load balancers share the backends, so moving
# the VIP would not help.
#
# Install: /etc/keepalived/check_fulcrum.sh, owned by root, mode 0755
# (with enable_script_security, keepalived refuses a script others can write).
ADMIN_URL="${FULCRUM_ADMIN_URL:-http://127.0.0.1:9901}"
exec curl --silent --fail --max-time 2 --output /dev/null "$ADMIN_URL/healthz"
