"""REST endpoints of the discussion: comments and attachments of a task or a process, and
the download of one attachment. Views parse, call a service or a selector, serialize."""

from __future__ import annotations

import hashlib
from functools import wraps

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from gndp.api.idempotency import idempotent
from gndp.api.validation import validated
from processes.selectors import process_for
from tasks.selectors import task_for

from . import selectors, services, uploads
from .serializers import AttachmentSerializer, AttachmentUploadSerializer, CommentInputSerializer, CommentSerializer

TAGS = ["collaboration"]
TASK_PARAM = OpenApiParameter("task_id", int, OpenApiParameter.PATH, description="A task id.")
PROCESS_PARAM = OpenApiParameter("process_id", int, OpenApiParameter.PATH, description="A process id.")
ATTACHMENT_PARAM = OpenApiParameter("attachment_id", int, OpenApiParameter.PATH, description="An attachment id.")


def _body(request) -> str:
    return validated(CommentInputSerializer, request.data, "invalid comment")["body"]


def refuse_oversized(view_method):
    """Before anything reads the body: a body too large to hold an allowed file is a 400."""

    @wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        uploads.refuse_oversized_body(request.META.get("CONTENT_LENGTH"))
        return view_method(self, request, *args, **kwargs)

    return wrapper


class _Listing(GenericAPIView):
    def page(self, queryset, serializer_class):
        return self.get_paginated_response(serializer_class(self.paginate_queryset(queryset), many=True).data)


class TaskCommentsView(_Listing):
    serializer_class = CommentSerializer

    @extend_schema(tags=TAGS, parameters=[TASK_PARAM], responses=CommentSerializer(many=True),
                   description="The task's comments, oldest first.")
    def get(self, request, task_id: str):
        return self.page(selectors.task_comments(task_for(request.user, task_id)), CommentSerializer)

    @extend_schema(tags=TAGS, parameters=[TASK_PARAM], request=CommentInputSerializer,
                   responses={201: CommentSerializer})
    @idempotent
    def post(self, request, task_id: str):
        comment = services.comment_add(user=request.user, body=_body(request), task_id=task_id)
        return Response(CommentSerializer(comment).data, status=201)


class ProcessCommentsView(_Listing):
    serializer_class = CommentSerializer

    @extend_schema(tags=TAGS, parameters=[PROCESS_PARAM], responses=CommentSerializer(many=True),
                   description="The process's discussion, oldest first: its own comments and its tasks'.")
    def get(self, request, process_id: str):
        return self.page(selectors.process_comments(process_for(request.user, process_id)), CommentSerializer)

    @extend_schema(tags=TAGS, parameters=[PROCESS_PARAM], request=CommentInputSerializer,
                   responses={201: CommentSerializer})
    @idempotent
    def post(self, request, process_id: str):
        comment = services.comment_add(user=request.user, body=_body(request), process_id=process_id)
        return Response(CommentSerializer(comment).data, status=201)


class _Uploads(_Listing):
    serializer_class = AttachmentSerializer
    parser_classes = [MultiPartParser, FormParser]

    def idempotency_hash(self, request) -> str:
        """The request as the idempotency check compares it: the file's content, not the
        multipart body (whose boundary changes with every send)."""
        digest = hashlib.sha256()
        digest.update(request.method.encode() + request.path.encode() + b"\0")
        upload = request.FILES.get("file")
        if upload is not None:
            digest.update((upload.name or "").encode() + b"\0")
            for chunk in upload.chunks():
                digest.update(chunk)
            upload.seek(0)
        return digest.hexdigest()


UPLOAD_REQUEST = {"multipart/form-data": AttachmentUploadSerializer}


class TaskAttachmentsView(_Uploads):
    @extend_schema(tags=TAGS, parameters=[TASK_PARAM], responses=AttachmentSerializer(many=True),
                   description="The task's files, oldest first.")
    def get(self, request, task_id: str):
        return self.page(selectors.task_attachments(task_for(request.user, task_id)), AttachmentSerializer)

    @extend_schema(tags=TAGS, parameters=[TASK_PARAM], request=UPLOAD_REQUEST, responses={201: AttachmentSerializer},
                   description="Attach a file (multipart field `file`). Too large, of a type not allowed, or "
                               "whose content is not what its name says: 400.")
    @refuse_oversized
    @idempotent
    def post(self, request, task_id: str):
        attachment = services.attachment_add(user=request.user, upload=request.FILES.get("file"), task_id=task_id)
        return Response(AttachmentSerializer(attachment).data, status=201)


class ProcessAttachmentsView(_Uploads):
    @extend_schema(tags=TAGS, parameters=[PROCESS_PARAM], responses=AttachmentSerializer(many=True),
                   description="The process's own files and those of its tasks the caller can see.")
    def get(self, request, process_id: str):
        process = process_for(request.user, process_id)
        return self.page(selectors.process_attachments(request.user, process), AttachmentSerializer)

    @extend_schema(tags=TAGS, parameters=[PROCESS_PARAM], request=UPLOAD_REQUEST,
                   responses={201: AttachmentSerializer},
                   description="Attach a file to the process itself (multipart field `file`).")
    @refuse_oversized
    @idempotent
    def post(self, request, process_id: str):
        attachment = services.attachment_add(user=request.user, upload=request.FILES.get("file"),
                                             process_id=process_id)
        return Response(AttachmentSerializer(attachment).data, status=201)


class AttachmentContentView(APIView):
    @extend_schema(tags=TAGS, parameters=[ATTACHMENT_PARAM],
                   responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY)},
                   description="The file, to those who can see its task (or its process, for a process's own "
                               "file); 404 for anyone else.")
    def get(self, request, attachment_id: str):
        attachment = selectors.attachment_for(request.user, attachment_id)
        response = FileResponse(attachment.file.open("rb"), as_attachment=True, filename=attachment.filename,
                                content_type="application/octet-stream")
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response["Cache-Control"] = "private, no-store"
        return response
