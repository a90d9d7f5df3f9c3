"""WSGI entry point: `microposts.wsgi:application`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microposts.settings")

application = get_wsgi_application()
