"""The floor: the least a server must do to serve the part of the contract the bench measures.

One asyncio process, no framework: raw `websockets` for `/ws/` and a minimal HTTP/1.1 handler
(keep-alive) for `POST /api/appointments/` and `GET /healthz` on a second port, with psycopg (async)
through one connection pool. It does work of the same shape as the app, so the app's figures can be
read as a multiple of it:

- a socket is authenticated with the same JWT (HS256, `SECRET_KEY`), its user read from the
  database, and greeted with `ready`;
- `join_queue` checks an active appointment and answers with the queue's snapshot; `update_queue`
  (that doctor only) stores the number and sends `queue_updated` (with `waiting_numbers`, as the
  app's queue object) to every socket of the queue;
- a booking, in one transaction, locks the doctor, checks the slot, numbers the queue, inserts the
  appointment, its audit row, two notifications (with the unread count) and four events numbered
  per user (`last_seq` bumped under the user's row lock), then after commit pushes
  `new_notification` and `appointment_updated`, with their `id`, to the patient's and the doctor's
  sockets.

Its tables (`floor_*`) live in the bench's scratch database beside the app's; at start it creates
them and copies the users, doctors and active appointments the bench seeded into the app's tables.

    SECRET_KEY=... python bench/floor.py --ws-port 9001 --http-port 9002 --database-url postgres://...
"""

import argparse
import asyncio
import datetime
import json
import os
import signal
import zoneinfo
from urllib.parse import parse_qs, urlsplit

import jwt
from psycopg_pool import AsyncConnectionPool
from websockets.asyncio.server import broadcast, serve
from websockets.exceptions import ConnectionClosed

SCHEMA = """
CREATE TABLE IF NOT EXISTS floor_user (
    id bigint PRIMARY KEY, role text NOT NULL, name text NOT NULL, is_active boolean NOT NULL,
    last_seq bigint NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS floor_doctor (
    id bigint PRIMARY KEY, user_id bigint NOT NULL UNIQUE REFERENCES floor_user);
CREATE TABLE IF NOT EXISTS floor_appointment (
    id bigserial PRIMARY KEY, patient_id bigint NOT NULL REFERENCES floor_user,
    doctor_id bigint NOT NULL REFERENCES floor_doctor, date date NOT NULL, time time NOT NULL,
    status text NOT NULL, queue_number integer NOT NULL, reason text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (doctor_id, date, queue_number));
CREATE UNIQUE INDEX IF NOT EXISTS floor_appointment_slot
    ON floor_appointment (doctor_id, date, time) WHERE status <> 'CANCELLED';
CREATE INDEX IF NOT EXISTS floor_appointment_patient ON floor_appointment (patient_id, doctor_id);
CREATE TABLE IF NOT EXISTS floor_appointment_history (
    id bigserial PRIMARY KEY, appointment_id bigint NOT NULL, actor_id bigint,
    at timestamptz NOT NULL DEFAULT now(), data jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS floor_notification (
    id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES floor_user, type text NOT NULL,
    title text NOT NULL, message text NOT NULL, related_id bigint, is_read boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX IF NOT EXISTS floor_notification_unread ON floor_notification (user_id, is_read);
CREATE TABLE IF NOT EXISTS floor_event (
    id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES floor_user, seq bigint NOT NULL,
    type text NOT NULL, data jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, seq));
CREATE TABLE IF NOT EXISTS floor_queue (
    doctor_id bigint NOT NULL REFERENCES floor_doctor, date date NOT NULL,
    current_queue integer NOT NULL DEFAULT 0, estimated_wait integer,
    updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (doctor_id, date));
"""

# The bench seeds users through the app's ORM; the floor takes the same people from there.
LOAD_FROM_APP = """
INSERT INTO floor_user (id, role, name, is_active)
    SELECT id, role, name, is_active FROM accounts_user ON CONFLICT DO NOTHING;
INSERT INTO floor_doctor (id, user_id) SELECT id, user_id FROM accounts_doctor ON CONFLICT DO NOTHING;
INSERT INTO floor_appointment (patient_id, doctor_id, date, time, status, queue_number)
    SELECT patient_id, doctor_id, date, time, status, queue_number FROM appointments_appointment
    WHERE status IN ('PENDING', 'CONFIRMED') ON CONFLICT DO NOTHING;
"""

USER_SQL = """
SELECT u.id, u.role, u.name, u.last_seq, d.id FROM floor_user u
LEFT JOIN floor_doctor d ON d.user_id = u.id WHERE u.id = %s AND u.is_active
"""

REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 409: "Conflict"}
NOTIFICATION_TEXT = {
    "APPOINTMENT_CONFIRMED": ("Appointment Confirmed", "Your appointment with {doctor} scheduled for {date} at {time}"),
    "APPOINTMENT_BOOKED": ("New Appointment", "{patient} booked an appointment on {date} at {time} (#{number})"),
}


class Refused(Exception):
    def __init__(self, status: int, body: dict):
        super().__init__(status)
        self.status, self.body = status, body


def frame(type_: str, data: dict, id_: int | None = None) -> str:
    body = {"type": type_, "data": data}
    if id_ is not None:
        body["id"] = id_
    return json.dumps(body, separators=(",", ":"), default=str, ensure_ascii=False)  # as the server sends


def whole_number(data: dict, name: str, *, required: bool = True):
    value = data.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2147483647:
        raise Refused(400, {name: ["A whole number is required."]})
    return value


class Floor:
    def __init__(self, pool: AsyncConnectionPool, secret_key: str, tz: zoneinfo.ZoneInfo):
        self.pool, self.key, self.tz = pool, secret_key, tz
        self.user_sockets: dict[int, set] = {}
        self.queue_sockets: dict[int, set] = {}
        self.greeted: dict = {}  # connection → its user row, from the handshake to the handler

    def today(self) -> datetime.date:
        return datetime.datetime.now(self.tz).date()

    def user_id_from(self, token: str | None) -> int | None:
        if not token:
            return None
        try:
            claims = jwt.decode(token, self.key, algorithms=["HS256"])
        except jwt.PyJWTError:
            return None
        if claims.get("token_type") != "access":
            return None
        try:
            return int(claims["user_id"])
        except (KeyError, TypeError, ValueError):
            return None

    async def user(self, conn, user_id: int):
        return await (await conn.execute(USER_SQL, (user_id,))).fetchone()

    async def snapshot(self, conn, doctor_id: int) -> dict:
        today = self.today()
        row = await (
            await conn.execute(
                "SELECT current_queue, estimated_wait FROM floor_queue WHERE doctor_id = %s AND date = %s",
                (doctor_id, today),
            )
        ).fetchone()
        current, wait = row if row else (0, None)
        # As the app's queue object (contract v1.1): `waiting` counts the non-cancelled numbers after
        # the current one, `waiting_numbers` lists the still-active ones.
        after = await (
            await conn.execute(
                "SELECT queue_number, status FROM floor_appointment WHERE doctor_id = %s AND date = %s"
                " AND queue_number > %s AND status <> 'CANCELLED' ORDER BY queue_number",
                (doctor_id, today, current),
            )
        ).fetchall()
        return {
            "doctor_id": doctor_id,
            "date": today.isoformat(),
            "current_queue": current,
            "estimated_wait": wait if wait is not None else 10,
            "waiting": len(after),
            "waiting_numbers": [number for number, status in after if status in ("PENDING", "CONFIRMED")],
        }

    # WebSocket

    async def handshake(self, connection, request):
        url = urlsplit(request.path)
        if url.path != "/ws/":
            return connection.respond(404, "Not found\n")
        user_id = self.user_id_from((parse_qs(url.query).get("token") or [None])[0])
        row = None
        if user_id is not None:
            async with self.pool.connection() as conn:
                row = await self.user(conn, user_id)
        if row is None:
            return connection.respond(403, "Forbidden\n")
        self.greeted[connection] = row
        return None

    async def socket(self, ws):
        user_id, role, _name, last_seq, doctor_id = self.greeted.pop(ws)
        mine = self.user_sockets.setdefault(user_id, set())
        mine.add(ws)
        watching: set[int] = set()
        try:
            await ws.send(frame("ready", {"user_id": user_id, "role": role, "last_event_id": last_seq or None}))
            async for raw in ws:
                try:
                    await self.client_frame(ws, raw, user_id, role, doctor_id, watching)
                except Refused as refusal:
                    await ws.send(frame("error", refusal.body))
        except ConnectionClosed:
            pass
        finally:
            mine.discard(ws)
            if not mine:
                self.user_sockets.pop(user_id, None)
            for watched in watching:
                self.queue_sockets.get(watched, set()).discard(ws)

    async def client_frame(self, ws, raw, user_id: int, role: str, own_doctor_id, watching: set[int]) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            raise Refused(400, {"code": "bad_request", "message": "Frames are JSON objects."}) from None
        if not isinstance(message, dict) or not isinstance(message.get("data", {}), dict):
            raise Refused(400, {"code": "bad_request", "message": "Frames are JSON objects."})
        kind, data = message.get("type"), message.get("data", {})
        try:
            doctor_id = whole_number(data, "doctor_id")
        except Refused:
            raise Refused(400, {"code": "bad_request", "message": "doctor_id is required.", "request": kind}) from None
        if kind == "join_queue":
            async with self.pool.connection() as conn:
                allowed = (
                    doctor_id == own_doctor_id
                    or (
                        await (
                            await conn.execute(
                                "SELECT EXISTS (SELECT 1 FROM floor_appointment WHERE patient_id = %s"
                                " AND doctor_id = %s AND status IN ('PENDING', 'CONFIRMED'))",
                                (user_id, doctor_id),
                            )
                        ).fetchone()
                    )[0]
                )
                if not allowed:
                    raise Refused(403, {"code": "forbidden", "message": "No active appointment.", "request": kind})
                snapshot = await self.snapshot(conn, doctor_id)
            self.queue_sockets.setdefault(doctor_id, set()).add(ws)
            watching.add(doctor_id)
            await ws.send(frame("queue_updated", snapshot))
        elif kind == "leave_queue":
            self.queue_sockets.get(doctor_id, set()).discard(ws)
            watching.discard(doctor_id)
        elif kind == "update_queue":
            if doctor_id != own_doctor_id:
                raise Refused(403, {"code": "forbidden", "message": "Not your queue.", "request": kind})
            try:
                current = whole_number(data, "current_queue")
                wait = whole_number(data, "estimated_wait", required=False)
            except Refused as refusal:
                raise Refused(400, {"code": "bad_request", "message": str(refusal.body), "request": kind}) from None
            async with self.pool.connection() as conn:
                await conn.execute(
                    "INSERT INTO floor_queue (doctor_id, date, current_queue, estimated_wait)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (doctor_id, date) DO UPDATE SET"
                    " current_queue = EXCLUDED.current_queue,"
                    " estimated_wait = coalesce(EXCLUDED.estimated_wait, floor_queue.estimated_wait),"
                    " updated_at = now()",
                    (doctor_id, self.today(), current, wait),
                )
                snapshot = await self.snapshot(conn, doctor_id)
            # Committed: now everyone in the queue hears it.
            broadcast(list(self.queue_sockets.get(doctor_id, ())), frame("queue_updated", snapshot))
        else:
            raise Refused(400, {"code": "bad_request", "message": "Unknown type.", "request": str(kind)[:40]})

    # HTTP

    async def http_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                request_line, *lines = head.decode("latin-1").split("\r\n")
                method, target, version = (request_line.split(" ", 2) + ["", ""])[:3]
                headers = {}
                for line in lines:
                    name, _, value = line.partition(":")
                    if name:
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if 0 < length <= 65536 else b""
                try:
                    status, payload = await self.route(method, urlsplit(target).path, headers, body)
                except Refused as refusal:
                    status, payload = refusal.status, refusal.body
                data = json.dumps(payload, separators=(",", ":"), default=str).encode()
                keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
                head = [f"HTTP/1.1 {status} {REASONS[status]}", "Content-Type: application/json"]
                head.append(f"Content-Length: {len(data)}")
                if not keep:
                    head.append("Connection: close")
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
                await writer.drain()
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def route(self, method: str, path: str, headers: dict, body: bytes):
        if path == "/healthz" and method == "GET":
            async with self.pool.connection() as conn:
                await conn.execute("SELECT 1")
            return 200, {"database": "ok"}
        if path == "/api/appointments/" and method == "POST":
            return await self.book(headers, body)
        return 404, {"detail": "Not found."}

    async def book(self, headers: dict, body: bytes):
        scheme, _, token = headers.get("authorization", "").partition(" ")
        user_id = self.user_id_from(token.strip()) if scheme.lower() == "bearer" else None
        if user_id is None:
            raise Refused(401, {"detail": "Authentication credentials were not provided or are invalid."})
        try:
            payload = json.loads(body)
            doctor_id = whole_number(payload, "doctor")
            date = datetime.date.fromisoformat(payload["date"])
            time = datetime.time.fromisoformat(payload["time"])
        except (ValueError, KeyError, TypeError):
            raise Refused(400, {"detail": "doctor, date and time are required."}) from None
        if date < self.today():
            raise Refused(400, {"date": ["The date is in the past."]})
        async with self.pool.connection() as conn:  # one transaction, committed on leaving the block
            caller = await self.user(conn, user_id)
            if caller is None:
                raise Refused(401, {"detail": "User not found."})
            patient_id = user_id if caller[1] == "PATIENT" else whole_number(payload, "patient")
            doctor = await (
                await conn.execute(
                    "SELECT d.id, d.user_id, u.name FROM floor_doctor d JOIN floor_user u ON u.id = d.user_id"
                    " WHERE d.id = %s FOR UPDATE OF d",
                    (doctor_id,),
                )
            ).fetchone()
            patient = await (
                await conn.execute("SELECT name FROM floor_user WHERE id = %s AND role = 'PATIENT'", (patient_id,))
            ).fetchone()
            if doctor is None or patient is None:
                raise Refused(400, {"doctor": ["Unknown doctor or patient."]})
            taken = await (
                await conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM floor_appointment WHERE doctor_id = %s AND date = %s"
                    " AND time = %s AND status <> 'CANCELLED')",
                    (doctor_id, date, time),
                )
            ).fetchone()
            if taken[0]:
                raise Refused(409, {"detail": "That time is already booked."})
            (number,) = await (
                await conn.execute(
                    "SELECT coalesce(max(queue_number), 0) + 1 FROM floor_appointment WHERE doctor_id = %s"
                    " AND date = %s",
                    (doctor_id, date),
                )
            ).fetchone()
            reason = str(payload.get("reason") or "")
            appointment_id, created, updated = await (
                await conn.execute(
                    "INSERT INTO floor_appointment (patient_id, doctor_id, date, time, status, queue_number, reason)"
                    " VALUES (%s, %s, %s, %s, 'CONFIRMED', %s, %s) RETURNING id, created_at, updated_at",
                    (patient_id, doctor_id, date, time, number, reason),
                )
            ).fetchone()
            appointment = {
                "id": appointment_id,
                "patient": patient_id,
                "patient_name": patient[0],
                "doctor": doctor_id,
                "doctor_name": doctor[2],
                "date": date.isoformat(),
                "time": time.strftime("%H:%M"),
                "status": "CONFIRMED",
                "queue_number": number,
                "reason": reason,
                "created_at": created.isoformat(),
                "updated_at": updated.isoformat(),
            }
            # The audit trail (contract v1.1): one row per change, who and what.
            await conn.execute(
                "INSERT INTO floor_appointment_history (appointment_id, actor_id, data) VALUES (%s, %s, %s::jsonb)",
                (appointment_id, user_id, json.dumps(appointment, default=str)),
            )
            words = {"doctor": doctor[2], "patient": patient[0], "date": appointment["date"]}
            words.update(time=appointment["time"], number=number)
            recipients = [(patient_id, "APPOINTMENT_CONFIRMED"), (doctor[1], "APPOINTMENT_BOOKED")]
            events = []  # (user_id, seq, type, data)
            # Lock the users' rows in id order (as the app does), then number their events.
            for user, kind in sorted(recipients):
                title, message = NOTIFICATION_TEXT[kind]
                message = message.format(**words)
                (notification_id, notified_at) = await (
                    await conn.execute(
                        "INSERT INTO floor_notification (user_id, type, title, message, related_id)"
                        " VALUES (%s, %s, %s, %s, %s) RETURNING id, created_at",
                        (user, kind, title, message, appointment_id),
                    )
                ).fetchone()
                (last_seq,) = await (
                    await conn.execute(
                        "UPDATE floor_user SET last_seq = last_seq + 2 WHERE id = %s RETURNING last_seq", (user,)
                    )
                ).fetchone()
                (unread,) = await (
                    await conn.execute(
                        "SELECT count(*) FROM floor_notification WHERE user_id = %s AND NOT is_read", (user,)
                    )
                ).fetchone()
                notification = {
                    "id": notification_id,
                    "type": kind,
                    "title": title,
                    "message": message,
                    "related_id": appointment_id,
                    "related_type": "Appointment",
                    "is_read": False,
                    "created_at": notified_at.isoformat(),
                    "unread_count": unread,
                }
                events.append((user, last_seq - 1, "new_notification", notification))
                events.append((user, last_seq, "appointment_updated", appointment))
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    "INSERT INTO floor_event (user_id, seq, type, data) VALUES (%s, %s, %s, %s::jsonb)",
                    [(user, seq, kind, json.dumps(data, default=str)) for user, seq, kind, data in events],
                )
        # Committed: push each event to its user's open sockets.
        for user, seq, kind, data in events:
            sockets = self.user_sockets.get(user)
            if sockets:
                broadcast(list(sockets), frame(kind, data, seq))
        return 201, appointment


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--ws-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--pool-size", type=int, default=4)
    parser.add_argument("--backlog", type=int, default=4096)
    args = parser.parse_args()
    secret_key = os.environ["SECRET_KEY"]
    tz = zoneinfo.ZoneInfo(os.environ.get("TIME_ZONE", "Asia/Dhaka"))

    pool = AsyncConnectionPool(args.database_url, min_size=args.pool_size, max_size=args.pool_size, open=False)
    await pool.open(wait=True, timeout=30)
    async with pool.connection() as conn:
        await conn.execute(SCHEMA)
        await conn.execute(LOAD_FROM_APP)
    floor = Floor(pool, secret_key, tz)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    http = await asyncio.start_server(floor.http_connection, args.host, args.http_port, backlog=args.backlog)
    async with serve(
        floor.socket,
        args.host,
        args.ws_port,
        process_request=floor.handshake,
        compression=None,
        max_size=65536,
        backlog=args.backlog,
    ):
        await stop.wait()
    http.close()
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
