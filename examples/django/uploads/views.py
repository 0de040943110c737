"""The view tuspass posts its completion form to, and the table of what it recorded: the
django-nginx-upload app's two views, reading tuspass's form (docs/completion-form.md) instead of
the nginx upload module's, and checking its Tuspass-Signature first."""
import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponseBadRequest, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django.views.generic.base import TemplateView

from .models import ImageFile
from .tuspass_signature import verify_tuspass


def in_store(path: str) -> bool:
    """The form's path is a file inside tuspass's store (never a path a client could choose)."""
    store = os.path.realpath(settings.TUSPASS_STORE_DIR)
    real = os.path.realpath(path)
    return real.startswith(store + os.sep) and os.path.isfile(real)


@csrf_exempt  # signed by tuspass instead: no browser posts here
@require_POST
def upload_complete(request):
    if not settings.TUSPASS_SECRET:
        raise ImproperlyConfigured("set TUSPASS_SECRET (tuspass's COMPLETION_SECRET) or TUSPASS_SECRET_FILE")
    # The signature covers the body exactly as sent: checked before the form is read.
    if not verify_tuspass(request.body, request.headers.get("Tuspass-Signature", ""), settings.TUSPASS_SECRET):
        return HttpResponseForbidden("Tuspass-Signature missing or wrong")

    form = request.POST
    # One form per upload from tus (file1 unless the client named the field), one per request with
    # every file of it from a multipart POST to /upload (file1, file2, ...).
    prefixes = [key[: -len(".path")] for key in form if key.endswith(".path")]
    if not prefixes:
        return HttpResponseBadRequest("no file in the form")
    for prefix in prefixes:
        path, size = form[f"{prefix}.path"], int(form[f"{prefix}.size"])
        # A 4xx among tuspass's CLEANUP_STATUSES: tuspass removes the upload.
        if not in_store(path) or os.path.getsize(path) != size:
            return HttpResponseBadRequest(f"{prefix}: not a file of that size in the store")
        # A form tuspass delivers again (after a timeout, a restart) records nothing twice.
        ImageFile.objects.get_or_create(
            upload_id=form[f"{prefix}.id"],
            defaults={
                "path": path,
                "filename": form.get(f"{prefix}.name", ""),
                "content_type": form.get(f"{prefix}.content_type", ""),
                "version": form[f"{prefix}.md5"],
                "size": size,
                "owner": form.get(f"{prefix}.owner", ""),
            },
        )

    # The original app's web form sends terminal=no: the browser goes on to the table.
    if form.get("terminal") == "no":
        return redirect("table")
    return JsonResponse({"message": "Upload Complete"})


class TableView(TemplateView):
    template_name = "uploads/table.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["uploads"] = ImageFile.objects.all()
        return context
