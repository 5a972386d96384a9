"""Handlers only the tests register (the worker imports this module too)."""

from processes import handlers


@handlers.register("flaky")
def flaky(context, params):
    """Fails until the side-effect counter in Redis or a file reaches `succeed_on`."""
    from pathlib import Path

    marker = Path(params["counter_file"])
    count = int(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text(str(count))
    if count < int(params.get("succeed_on", 2)):
        raise handlers.HandlerFailed(f"attempt {count} fails on purpose")
    return {"flaky_attempts": count}
