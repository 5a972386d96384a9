"""Writers and readers of one folder queue, each run as an OS process of its own by
`test_file_queue.py`:

    python -m tests.background.queue_stress writer|reader TRANSPORT FOLDER INDEX WRITERS MESSAGES SIZE

Writers declare their queue and publish through one shared exchange; every few messages
they also bind a queue of their own again, so that the exchange table is rewritten while
others route through it. Readers consume every writer's queue, acknowledge, and write one
JSON line per message (writer, sequence number, whether the body was intact) to
`FOLDER/out/reader-INDEX.jsonl`. Any exception is written to `FOLDER/out/error-NAME.txt`
and the process exits 1. Readers stop when `FOLDER/out/writers-done` exists and nothing
arrived for a while.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import traceback
from pathlib import Path

from kombu import Connection, Consumer, Exchange, Producer, Queue

EXCHANGE = Exchange("stress", type="direct", durable=False)
IDLE_SECONDS = 3.0


def connection(transport: str, folder: Path) -> Connection:
    if transport == "gndpfiles":
        import gndp.filequeue  # noqa: F401 - registers the scheme
    options = {"data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
               "control_folder": str(folder / "control"), "processed_folder": str(folder / "queue"),
               "store_processed": False, "polling_interval": 0.01}
    return Connection(f"{transport}://", transport_options=options)


def queue_of(writer: int) -> Queue:
    return Queue(f"stress.q{writer}", EXCHANGE, routing_key=f"q{writer}", durable=False)


def body(writer: int, seq: int, size: int) -> dict:
    pad = (f"{writer}:{seq}:" * (size // 8 + 1))[:size]
    return {"writer": writer, "seq": seq, "pad": pad, "digest": hashlib.sha256(pad.encode()).hexdigest()}


def write(transport: str, folder: Path, index: int, messages: int, size: int) -> None:
    with connection(transport, folder) as conn:
        channel = conn.channel()
        own = queue_of(index)(channel)
        own.declare()
        producer = Producer(channel, exchange=EXCHANGE, serializer="json")
        for seq in range(messages):
            if seq % 10 == 0:
                # A binding of its own, new each time: the table is rewritten under the others.
                Queue(f"stress.extra{index}.{seq}", EXCHANGE, routing_key=f"extra{index}.{seq}",
                      durable=False)(channel).declare()
            producer.publish(body(index, seq, size), routing_key=f"q{index}")


def read(transport: str, folder: Path, index: int, writers: int) -> None:
    out = folder / "out" / f"reader-{index}.jsonl"
    done = folder / "out" / "writers-done"
    last = time.monotonic()
    with connection(transport, folder) as conn, open(out, "a") as lines:
        channel = conn.channel()
        channel.basic_qos(0, 1, False)

        def received(payload, message):
            nonlocal last
            last = time.monotonic()
            intact = hashlib.sha256(payload["pad"].encode()).hexdigest() == payload["digest"]
            lines.write(json.dumps({"writer": payload["writer"], "seq": payload["seq"], "intact": intact}) + "\n")
            lines.flush()
            message.ack()

        queues = [queue_of(writer) for writer in range(writers)]
        with Consumer(channel, queues, callbacks=[received], accept=["json"]):
            while not (done.exists() and time.monotonic() - last > IDLE_SECONDS):
                try:
                    conn.drain_events(timeout=0.2)
                except TimeoutError:
                    pass


def main(argv: list[str]) -> int:
    role, transport, folder, index, writers, messages, size = argv
    folder, index = Path(folder), int(index)
    try:
        if role == "writer":
            write(transport, folder, index, int(messages), int(size))
        else:
            read(transport, folder, index, int(writers))
    except BaseException:
        (folder / "out" / f"error-{role}-{index}.txt").write_text(traceback.format_exc())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
