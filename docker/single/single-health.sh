#!/bin/sh
# Container health check of the single-container image: nginx answers, and the app answers and is ready (database
# reachable, migrations applied) through uWSGI.
nginx-health && uwsgi-health --ready
