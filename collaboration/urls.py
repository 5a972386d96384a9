"""Included by gndp.urls at the root: the discussion's page endpoints and its API."""

from django.urls import path

from . import api, views

urlpatterns = [
    path("processes/<int:process_id>/discussion/", views.process_discussion, name="process-discussion"),
    path("processes/<int:process_id>/comments/", views.process_comment, name="process-comment-page"),
    path("processes/<int:process_id>/attachments/", views.process_attachment, name="process-attachment-page"),
    path("tasks/<int:task_id>/discussion/", views.task_discussion, name="task-discussion"),
    path("tasks/<int:task_id>/comments/", views.task_comment, name="task-comment-page"),
    path("tasks/<int:task_id>/attachments/", views.task_attachment, name="task-attachment-page"),
    path("api/tasks/<str:task_id>/comments", api.TaskCommentsView.as_view(), name="task-comments"),
    path("api/tasks/<str:task_id>/attachments", api.TaskAttachmentsView.as_view(), name="task-attachments"),
    path("api/processes/<str:process_id>/comments", api.ProcessCommentsView.as_view(), name="process-comments"),
    path("api/processes/<str:process_id>/attachments", api.ProcessAttachmentsView.as_view(),
         name="process-attachments"),
    path("api/attachments/<str:attachment_id>/content", api.AttachmentContentView.as_view(),
         name="attachment-content"),
]
