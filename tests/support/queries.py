"""Counting the SQL a socket runs, where it runs it: on the thread that channels' database_sync_to_async uses."""

import contextlib

from channels.db import database_sync_to_async
from django.db import connection


@contextlib.asynccontextmanager
async def counting_queries():
    """Every SQL statement run inside, as a list of their texts, by code that reaches the database as a
    consumer does (database_sync_to_async: one thread, its own connection), counted with Django's
    public execute_wrapper on that thread's connection."""
    seen: list[str] = []
    wrappers = contextlib.ExitStack()

    def count(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    def install():  # on that thread, where `connection` is its connection
        wrappers.enter_context(connection.execute_wrapper(count))

    await database_sync_to_async(install)()
    try:
        yield seen
    finally:
        await database_sync_to_async(wrappers.close)()
