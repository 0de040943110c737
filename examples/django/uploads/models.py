from django.db import models


class ImageFile(models.Model):
    """A finished upload, as tuspass's completion form describes it. The file itself stays where
    tuspass stored it (`path`, in its STORE_DIR); nothing is copied."""

    upload_id = models.CharField(max_length=128, unique=True)
    path = models.CharField(max_length=1024)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    version = models.CharField(max_length=32)  # the md5, as the original app named it
    size = models.BigIntegerField()
    owner = models.CharField(max_length=255, blank=True)
    created_on = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_on"]
