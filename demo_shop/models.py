from django.db import models  # noqa: F401  (the demo shop app fills this)
