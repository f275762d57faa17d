"""Requests through the real ASGI application, as daphne would make them."""

from asgiref.testing import ApplicationCommunicator

from mediconnect.asgi import application


async def asgi_get(path: str, headers=(), app=application) -> tuple[int, dict, bytes]:
    """(status, headers, body) of a GET through the real ASGI application, streamed bodies included
    (channels' HttpCommunicator expects a `body` in every message; a file response ends without one)."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), *headers],
    }
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(timeout=10)
    body = b""
    while True:
        message = await communicator.receive_output(timeout=10)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(timeout=10)
    return start["status"], dict(start["headers"]), body
