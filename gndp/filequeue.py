"""The embedded default's Celery broker: a folder of message files that any number of
processes write and read at once, none of them ever seeing part of a message.

kombu's own file-system transport (5.7) is not safe for that. Its writer creates a message
file under its final name and then writes it, and its readers take any file of their queue
without a lock: a reader that comes between the two reads a half-written message, raises
`JSONDecodeError`, and the Celery worker exits. Its exchange tables (which queue an
exchange routes to) are truncated and rewritten in place, so a reader can find one empty,
and two processes declaring queues at once can each write the other's binding away.

Here:

- a writer writes the message to a hidden temporary file in the queue's folder and renames
  it to its final name: rename within one file system is atomic, so a reader lists either
  the whole message or nothing;
- a reader claims a message by renaming it into `claimed/` in the same folder: when several
  readers pick the same file, exactly one rename succeeds and the others go on to the next
  file; the winner reads the file and removes it;
- an exchange table is changed under an exclusive lock on a lock file of its own (never
  replaced, so the lock means something) and replaced atomically the same way; readers
  read it without a lock and see the old table or the new one, never a part of one;
- a message that cannot be decoded all the same (a disk that lost it in a power cut) is set
  aside in `corrupt/` with an error in the log instead of killing the worker; the sweep of
  system steps (`requeue_stale_system_tasks`) sends again whatever it carried.

As with any kombu virtual transport, a message a worker took and had not acknowledged when
it was killed is gone from the folder; the sweep re-sends open system steps, as it does for
a Redis broker after its visibility timeout. POSIX only (flock, rename).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from queue import Empty

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)

SCHEME = "gndpfiles"
CLAIMED = "claimed"
CORRUPT = "corrupt"
TEMPORARY_SUFFIX = ".tmp"
# A temporary or claimed file this old belongs to a process that died halfway through
# writing or reading it: nobody will finish it.
ABANDONED_SECONDS = 3600


def _message_name(queue: str) -> str:
    # Sorted by name = sent order: the wall clock in nanoseconds, fixed width, then a
    # random part so that two writers in the same nanosecond still differ. The queue name
    # follows the first dot, as in kombu's own transport (queue names may contain dots).
    return f"{time.time_ns():020d}_{uuid.uuid4().hex}.{queue}.msg"


def _queue_of(filename: str) -> str | None:
    stem, dot, rest = filename.partition(".")
    if not stem or not dot or not rest.endswith(".msg"):
        return None
    return rest[: -len(".msg")]


def write_atomically(path: Path | str, data: bytes) -> None:
    """Write `data` to `path` so that whoever opens `path` sees all of it or none of it."""
    path = Path(path)
    temporary = path.parent / f".{uuid.uuid4().hex}{TEMPORARY_SUFFIX}"
    try:
        with open(temporary, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class Channel(filesystem.Channel):
    """kombu's file-system channel with atomic writes, claims by rename and atomically
    replaced exchange tables (see the module's docstring)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for folder in {self.data_folder_in, self.data_folder_out}:
            Path(folder, CLAIMED).mkdir(parents=True, exist_ok=True)
            _remove_abandoned(Path(folder))

    # --- messages -------------------------------------------------------------------------
    def _put(self, queue, payload, **kwargs) -> None:
        path = Path(self.data_folder_out, _message_name(queue))
        try:
            write_atomically(path, str_to_bytes(dumps(payload)))
        except OSError as exc:
            raise ChannelError(f"Cannot add file {str(path)!r} to directory") from exc

    def _get(self, queue):
        folder = Path(self.data_folder_in)
        for filename in sorted(os.listdir(folder)):
            if _queue_of(filename) != queue:
                continue
            claimed = folder / CLAIMED / filename
            try:
                os.rename(folder / filename, claimed)
            except FileNotFoundError:
                continue  # another reader claimed it first
            try:
                data = claimed.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise ChannelError(f"Cannot read file {str(claimed)!r} from queue.") from exc
            try:
                payload = loads(bytes_to_str(data))
            except ValueError:
                self._set_aside(claimed)
                continue
            if self.store_processed:
                os.replace(claimed, Path(self.processed_folder) / filename)
            else:
                claimed.unlink(missing_ok=True)
            return payload
        raise Empty()

    def _set_aside(self, claimed: Path) -> None:
        corrupt = claimed.parent.parent / CORRUPT
        corrupt.mkdir(exist_ok=True)
        os.replace(claimed, corrupt / claimed.name)
        log.error("message %s could not be decoded; set aside in %s (the system-step sweep re-sends what it "
                  "carried)", claimed.name, corrupt)

    # --- exchange tables -------------------------------------------------------------------
    def get_table(self, exchange):
        return _read_table(self._exchange_file(exchange))

    def _queue_bind(self, exchange, routing_key, pattern, queue) -> None:
        file = self._exchange_file(exchange)
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with _table_lock(file):
            table = _read_table(file)
            if entry not in table:
                _write_table(file, [entry, *table])

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs) -> None:
        # The virtual channel's own part (purge the queue), not the file-system channel's
        # rewrite of the table in place.
        super(filesystem.Channel, self)._delete(queue, exchange, routing_key, pattern, *args, **kwargs)
        file = self._exchange_file(exchange)
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with _table_lock(file):
            table = _read_table(file)
            if entry in table:
                _write_table(file, [item for item in table if item != entry])


def _read_table(file: Path) -> list:
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ChannelError(f"Cannot open {file}") from exc
    return [filesystem.exchange_queue_t(*item) for item in loads(bytes_to_str(data))]


def _write_table(file: Path, table: list) -> None:
    try:
        write_atomically(file, str_to_bytes(dumps(table)))
    except OSError as exc:
        raise ChannelError(f"Cannot write {file}") from exc


@contextmanager
def _table_lock(file: Path):
    file.parent.mkdir(parents=True, exist_ok=True)
    with open(file.with_name(file.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _remove_abandoned(folder: Path) -> None:
    """Temporary files of writers, and claimed files of readers, that died halfway."""
    cutoff = time.time() - ABANDONED_SECONDS
    candidates = [*folder.glob(f".*{TEMPORARY_SUFFIX}"), *(folder / CLAIMED).iterdir()]
    for path in candidates:
        try:
            # ctime: a rename sets it, so a claimed file's age counts from its claim.
            if path.stat().st_ctime < cutoff:
                path.unlink()
        except FileNotFoundError:
            pass


class Transport(filesystem.Transport):
    Channel = Channel
    # Its own state: kombu's file-system transport keeps the declared exchanges of a
    # process in a class attribute, which this one must not share.
    global_state = filesystem.virtual.BrokerState()
    # How often an idle worker looks at the folder: a listing of a small folder, cheap
    # enough to do often, and a system step starts within this time of its commit.
    polling_interval = 0.1
    driver_type = driver_name = SCHEME


# `gndpfiles://` in CELERY_BROKER_URL names this transport (settings, the embedded default).
TRANSPORT_ALIASES.setdefault(SCHEME, f"{__name__}:Transport")
