from django.urls import path

from uploads import views

urlpatterns = [
    # tuspass's COMPLETION_URL: http://<this app>/complete/
    path("complete/", views.upload_complete, name="upload_complete"),
    path("table/", views.TableView.as_view(), name="table"),
]
