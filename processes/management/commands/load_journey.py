from __future__ import annotations

from pathlib import Path

from django.db import transaction

from gndp.json_input import journey_limits
from processes import handlers
from processes.journey import JourneyError, normalize, parse_text
from processes.versions import publish_journey

from ._base import ServiceCommand


class Command(ServiceCommand):
    help = "Validate journey files (YAML or JSON) and publish them as workflow versions."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+")

    def handle(self, *args, files, **options):
        # Check every file before storing any: a bad file in the list stores nothing.
        problems: list[str] = []
        parsed = []
        max_bytes, max_depth = journey_limits()
        for name in files:
            prefix = f"{name}: " if len(files) > 1 else ""
            try:
                if Path(name).stat().st_size > max_bytes:  # refused before it is read
                    raise JourneyError([f"{name}: larger than {max_bytes} bytes"])
                data = parse_text(Path(name).read_text(encoding="utf-8"), filename=name, max_bytes=max_bytes,
                                  max_depth=max_depth)
                normalize(data, known_handlers=handlers.names())
                parsed.append(data)
            except OSError as exc:
                problems.append(f"{name}: cannot read: {exc.strerror}")
            except UnicodeDecodeError:
                problems.append(f"{name}: not UTF-8 text")
            except JourneyError as exc:
                problems.extend(prefix + problem for problem in exc.problems)
        if problems:
            self.fail(*problems)
        with transaction.atomic():
            published = [publish_journey(data) for data in parsed]
        for item in published:
            version = item.version
            self.stdout.write(f"{version.journey_id} version {version.number} {version.hash}")
