#!/bin/bash
# Container health check: nginx answers 200 on its internal port. Plain bash, so the image needs no HTTP client.
exec 3<>/dev/tcp/127.0.0.1/8081 || exit 1
printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
IFS= read -r -t 3 status <&3 || exit 1
[[ $status == "HTTP/1.1 200"* ]]
