from django.contrib import admin

from processes.admin import ReadOnlyAdmin

from .models import Attachment, Comment


@admin.register(Comment)
class CommentAdmin(ReadOnlyAdmin):
    list_display = ["id", "process", "task", "author_name", "created_at"]
    search_fields = ["author_name", "body", "process__id"]
    date_hierarchy = "created_at"


@admin.register(Attachment)
class AttachmentAdmin(ReadOnlyAdmin):
    list_display = ["id", "process", "task", "filename", "content_type", "size", "uploaded_by_name", "created_at"]
    search_fields = ["filename", "uploaded_by_name", "process__id"]
    date_hierarchy = "created_at"
