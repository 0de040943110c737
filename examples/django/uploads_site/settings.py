"""Settings of the example: everything a deployment changes comes from the environment."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-for-production")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS = ["uploads"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "uploads_site.urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB", str(BASE_DIR / "db.sqlite3")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

# tuspass's side: the completion secret (COMPLETION_SECRET, or the one tuspass generated into
# DATA_DIR/completion-secret) and the store the form's paths must lie in (STORE_DIR).
def _tuspass_secret() -> str:
    if os.environ.get("TUSPASS_SECRET"):
        return os.environ["TUSPASS_SECRET"]
    if os.environ.get("TUSPASS_SECRET_FILE"):
        return Path(os.environ["TUSPASS_SECRET_FILE"]).read_text().strip()
    return ""


TUSPASS_SECRET = _tuspass_secret()
TUSPASS_STORE_DIR = os.environ.get("TUSPASS_STORE_DIR", "/data/uploads")
