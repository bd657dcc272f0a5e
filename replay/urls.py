"""Replay pages and JSON API routes."""

from django.urls import path

from replay import api, views

urlpatterns = [
    path("replays/", views.replay_list, name="replays"),
    path("replays/new", views.replay_new, name="replay_new"),
    path("replays/<int:job_id>/", views.replay_detail, name="replay"),
    path("replays/<int:job_id>/progress", views.replay_progress, name="replay_progress"),
    path("replays/<int:job_id>/items/<int:position>/", views.replay_item, name="replay_item"),
    path("replays/<int:job_id>/cancel", views.replay_cancel, name="replay_cancel"),
    path("replays/<int:job_id>/resume", views.replay_resume, name="replay_resume"),
    path("replays/<int:job_id>/send", views.replay_send, name="replay_send"),
    path("api/replays", api.replays_create, name="api_replays"),
    path("api/replays/<int:job_id>", api.replay_status, name="api_replay"),
    path("api/replays/<int:job_id>/cancel", api.replay_cancel, name="api_replay_cancel"),
    path("api/replays/<int:job_id>/resume", api.replay_resume, name="api_replay_resume"),
]
