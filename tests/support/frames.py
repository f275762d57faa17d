"""Every server frame a socket test receives is checked against its schema in core/wire.py (Zulip's
`event_schema` idea): a key added, renamed or dropped anywhere fails the test that saw it."""

import functools
import json

import jsonschema

from core import wire


@functools.cache
def _validator(type_: str) -> jsonschema.Draft202012Validator:
    schema = wire.frame_schema(type_)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def check_frame(frame: dict | str) -> dict:
    """The frame (parsed when given as text), after checking it against its type's schema."""
    if isinstance(frame, str):
        frame = json.loads(frame)
    assert isinstance(frame, dict) and isinstance(frame.get("type"), str), f"not a frame: {frame!r}"
    assert frame["type"] in wire.FRAMES, f"the server sent a frame type core/wire.py does not declare: {frame!r}"
    errors = sorted(_validator(frame["type"]).iter_errors(frame), key=str)
    assert not errors, f"{frame['type']} frame off its schema: {errors[0].message} in {frame!r}"
    return frame
