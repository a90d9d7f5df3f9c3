# The benchmark's app-server image: the project's app image (the Django app, uWSGI, the same uwsgi.ini) plus the
# plain-WSGI hello app and the alternatives it is compared with (gunicorn, granian). One image serves every
# app-server variant of the benchmark, so they all run the same Python, the same app and the same virtualenv.
# Image names from defaults.env, which compose and tools/ pass as build arguments (no second default here).
ARG APP_IMAGE
FROM ${APP_IMAGE}

# Root only for the install below; the last USER is the app user.
# hadolint ignore=DL3066
USER root
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.txt /tmp/bench-requirements.txt
# Both are pure Python or ship manylinux wheels: the runtime image needs no compiler.
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/venv/bin/pip install -r /tmp/bench-requirements.txt

# The hello app beside the Django one; APP_DIR and WSGI_MODULE pick it at run time.
COPY hello/ /srv/hello/
RUN python3 -m compileall -q /srv/hello
# The user is created in this image (or its base) with a fixed uid, so the name resolves.
# hadolint ignore=DL3066
USER app
