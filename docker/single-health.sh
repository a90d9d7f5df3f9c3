#!/bin/sh
# Container health check of the single-container image: nginx answers, and the app answers through uWSGI.
nginx-health && uwsgi-health
