from django.urls import path

from demo_shop import views

app_name = "demo_shop"
urlpatterns = [
    path("reversals", views.reversals, name="reversals"),
    path("notifications", views.notifications, name="notifications"),
    path("anchors", views.anchors, name="anchors"),
    path("events", views.events, name="events"),
    path("", views.shop_page, name="page"),
]
