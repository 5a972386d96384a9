from __future__ import annotations

import json
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from gndp import json_input
from processes.services import start_processes

from ._base import ServiceCommand


class Command(ServiceCommand):
    """Who starts them is said on every run: `--user NAME` starts them as that user, checked
    exactly as the API checks a start (processes.start_rights); `--operator` starts them as
    the operator, past every journey's start rule, recorded as started by no one. Whoever
    can run this command holds the server's database credentials: the flag makes the
    bypass a deliberate, visible choice, never what happens when a flag is forgotten."""

    help = ("Start many processes of a journey at once (the bulk start path) as --user NAME (checked like "
            "the API) or as the --operator; print how many and how fast.")

    def add_arguments(self, parser):
        parser.add_argument("workflow_id")
        parser.add_argument("--count", type=int, help="this many processes, each with --context")
        parser.add_argument("--context", default="{}", help="the context of each, a JSON object")
        parser.add_argument("--contexts", help="a JSON file holding a list of contexts, one process each")
        parser.add_argument("--user", help="the user name they are started by; it must be allowed to start them")
        parser.add_argument("--operator", action="store_true",
                            help="start them as the operator: no user, past the journey's start rule")

    def handle(self, *args, workflow_id, count, context, contexts, user, operator, **options):
        if (count is None) == (contexts is None):
            self.fail("give either --count or --contexts")
        if bool(user) == operator:
            self.fail("give either --user NAME (started by that user, if it may) or --operator")
        if contexts is not None:
            try:
                if Path(contexts).stat().st_size > settings.GNDP_BULK_START_MAX_BYTES:  # refused before it is read
                    raise json_input.too_large("--contexts", settings.GNDP_BULK_START_MAX_BYTES)
                values = json_input.loads(Path(contexts).read_text(), what="--contexts",
                                          max_bytes=settings.GNDP_BULK_START_MAX_BYTES)
            except (OSError, UnicodeDecodeError) as exc:
                self.fail(f"--contexts: cannot read {contexts}: {exc}")
            except json.JSONDecodeError as exc:
                self.fail(f"--contexts: invalid JSON: {exc.msg} at line {exc.lineno}")
            if not isinstance(values, list):
                self.fail("--contexts: must hold a JSON list of objects")
        else:
            if count < 1:
                self.fail("--count must be at least 1")
            try:
                one = json_input.loads(context, what="--context")
            except json.JSONDecodeError as exc:
                self.fail(f"--context: invalid JSON: {exc.msg} at position {exc.pos}")
            values = [one] * count
        starter = None
        if user:
            starter = get_user_model().objects.filter(username=user).first()
            if starter is None:
                self.fail(f"no user named {user!r}")
        began = time.perf_counter()
        started = start_processes(workflow_id=workflow_id, contexts=values, user=starter)
        seconds = time.perf_counter() - began
        by = f"as {starter.get_username()}" if starter is not None else "as the operator"
        self.stdout.write(f"started {len(started)} processes of {workflow_id} {by} in {seconds:.1f} s "
                          f"({len(started) / seconds:.0f} a second)")
