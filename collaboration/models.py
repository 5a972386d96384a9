from __future__ import annotations

import html
import re
import uuid

from django.conf import settings
from django.db import models


class Comment(models.Model):
    """A comment on a process, or on one of its tasks. `body` is the author's markdown;
    `body_html` is what pages show, rendered and sanitised once, when it is written."""

    process = models.ForeignKey("processes.ProcessInstance", on_delete=models.CASCADE, related_name="comments")
    task = models.ForeignKey("tasks.TaskInstance", on_delete=models.CASCADE, null=True, blank=True,
                             related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="+")
    author_name = models.CharField(max_length=150)
    body = models.TextField()
    body_html = models.TextField()
    mentions = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["process", "id"], name="comment_process_idx"),
            models.Index(fields=["task", "id"], name="comment_task_idx"),
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"comment {self.pk} by {self.author_name}"

    def excerpt(self, length: int = 200) -> str:
        """The comment as plain text, shortened: for notifications and emails."""
        spaced = re.sub(r"</?(?:p|br|li|ul|ol|h[1-6]|pre|blockquote|tr|td|th|hr|table)\b[^>]*>", " ", self.body_html)
        text = html.unescape(re.sub(r"<[^>]+>", "", spaced))
        text = " ".join(text.split())
        return text if len(text) <= length else text[: length - 1].rstrip() + "…"


def attachment_path(instance: "Attachment", filename: str) -> str:
    # A random name: the stored path never carries the uploader's file name.
    return f"attachments/{instance.process_id}/{uuid.uuid4().hex}"


class Attachment(models.Model):
    """A file on a process or one of its tasks, kept through Django's storage API and
    served only to those who can see its task (or its process, for a process's own)."""

    process = models.ForeignKey("processes.ProcessInstance", on_delete=models.CASCADE, related_name="attachments")
    task = models.ForeignKey("tasks.TaskInstance", on_delete=models.CASCADE, null=True, blank=True,
                             related_name="attachments")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    uploaded_by_name = models.CharField(max_length=150)
    file = models.FileField(upload_to=attachment_path, max_length=300)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["process", "id"], name="attachment_process_idx"),
            models.Index(fields=["task", "id"], name="attachment_task_idx"),
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.size} bytes)"
