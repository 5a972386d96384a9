from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from .models import Attachment, Comment


class CommentSerializer(serializers.ModelSerializer):
    process_id = serializers.IntegerField()
    task_id = serializers.IntegerField(allow_null=True)
    author = serializers.CharField(source="author_name")
    mentions = serializers.SerializerMethodField()

    class Meta:
        model = Comment
        fields = ["id", "process_id", "task_id", "author", "body", "body_html", "mentions", "created_at"]
        read_only_fields = fields

    def get_mentions(self, comment) -> list[str]:
        """The user names mentioned (and notified): only people who can see the process."""
        return sorted(user.get_username() for user in comment.mentions.all())


class CommentInputSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=10_000, help_text="Markdown. `@name` mentions a user who can see "
                                                              "the process (or the task).")


class AttachmentSerializer(serializers.ModelSerializer):
    process_id = serializers.IntegerField()
    task_id = serializers.IntegerField(allow_null=True)
    uploaded_by = serializers.CharField(source="uploaded_by_name")
    url = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = ["id", "process_id", "task_id", "filename", "content_type", "size", "sha256", "uploaded_by",
                  "created_at", "url"]
        read_only_fields = fields

    def get_url(self, attachment) -> str:
        """Where to download the file (for those who may)."""
        return reverse("attachment-content", args=[attachment.pk])


class AttachmentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="At most GNDP_ATTACHMENT_MAX_BYTES; one of GNDP_ATTACHMENT_TYPES.")
