"""Group-order events: "this group order changed", from whoever changed it to whoever
listens.

An event carries only the group order's id. A listener re-reads the group order from
the database, so what it answers is the stored truth, never a copy that travelled. Two
backends:

* ``LocalEventBus``: within one process (the embedded SQLite mode, where the worker
  runs in the server process).
* ``RedisEventBus``: Redis pub/sub, so that a server process hears the jobs of every
  worker process. Each process holds one pattern subscription, whatever the number of
  its listeners, and hands events to them in memory.
* ``PostgresEventBus``: PostgreSQL's ``LISTEN``/``NOTIFY`` on the service's own
  database, the default on PostgreSQL when no Redis is set: worker processes on other
  machines reach the server processes with nothing more to run. One listening
  connection per process, handed out in memory as with Redis.

Publishing never raises: an event is a hint, and a listener also re-reads on a slow
timer, so a broker that is briefly away delays an update but never loses one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import redis.asyncio as redis
from redis.exceptions import RedisError

from group_orders.db.engine import is_postgresql, libpq_url
from group_orders.settings import Settings

logger = logging.getLogger("group_orders.events")

# How long a new listener waits for the broker to confirm the subscription before it
# goes on without (its timer still re-reads).
READY_TIMEOUT_SECONDS = 5.0
RECONNECT_DELAY_SECONDS = 1.0
# How often an idle PostgreSQL listener checks that its server is still there.
KEEPALIVE_SECONDS = 15.0
POSTGRES_CHANNEL = "group_order_changed"


class Listener:
    """One listener of one group order: whether something happened since it last looked.

    Events that come while the listener is busy collapse into one, so a slow listener
    re-reads once for many updates.
    """

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def notify(self) -> None:
        self._changed.set()

    async def wait(self, seconds: float) -> bool:
        """True when an event came within ``seconds``, False when none did."""
        if not self._changed.is_set():
            try:
                await asyncio.wait_for(self._changed.wait(), seconds)
            except TimeoutError:
                return False
        self._changed.clear()
        return True


class EventBus:
    """Publishes group-order events and hands them to this process's listeners."""

    def __init__(self) -> None:
        self._listeners: dict[uuid.UUID, set[Listener]] = {}

    async def publish(self, group_order_id: uuid.UUID) -> None:
        """Tell every listener of ``group_order_id`` that it changed. Never raises."""
        raise NotImplementedError

    @asynccontextmanager
    async def subscribe(self, group_order_id: uuid.UUID) -> AsyncIterator[Listener]:
        """A listener of ``group_order_id`` for the duration of the block. Events
        published once this is entered reach it."""
        await self._ready()
        listener = Listener()
        self._listeners.setdefault(group_order_id, set()).add(listener)
        try:
            yield listener
        finally:
            listeners = self._listeners.get(group_order_id)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._listeners[group_order_id]

    def listening(self, group_order_id: uuid.UUID) -> int:
        """How many listeners of ``group_order_id`` this process has."""
        return len(self._listeners.get(group_order_id, ()))

    def _deliver(self, group_order_id: uuid.UUID) -> None:
        for listener in self._listeners.get(group_order_id, ()):
            listener.notify()

    def _deliver_to_all(self) -> None:
        for listeners in self._listeners.values():
            for listener in listeners:
                listener.notify()

    async def _ready(self) -> None:
        return None

    async def close(self) -> None:
        return None


class LocalEventBus(EventBus):
    """Events within one process."""

    async def publish(self, group_order_id: uuid.UUID) -> None:
        self._deliver(group_order_id)


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


class ListeningEventBus(EventBus):
    """A bus whose events come from a broker: one task per process listens to it (and
    reconnects), and hands every event to this process's listeners."""

    broker = "the broker"

    def __init__(self) -> None:
        super().__init__()
        self._task: asyncio.Task[None] | None = None
        # Set while the listening task is subscribed to the broker.
        self._subscribed = asyncio.Event()

    async def _listen(self) -> None:
        raise NotImplementedError

    async def _ready(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._listen(), name="group-order-events")
        try:
            await asyncio.wait_for(self._subscribed.wait(), READY_TIMEOUT_SECONDS)
        except TimeoutError:
            logger.warning(
                "events: %s did not confirm the subscription; relying on timers", self.broker
            )

    async def _stop_listening(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class RedisEventBus(ListeningEventBus):
    """Events through Redis pub/sub, on channels ``<prefix>:group-order:<id>``."""

    broker = "Redis"

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__()
        self._url = url
        self.prefix = prefix
        self._prefix = f"{prefix}:group-order:"
        self._client: redis.Redis | None = None

    def channel(self, group_order_id: uuid.UUID) -> str:
        return f"{self._prefix}{group_order_id}"

    def _redis(self) -> redis.Redis:
        # Made on first use, inside the event loop that will use it.
        if self._client is None:
            self._client = redis.Redis.from_url(self._url, decode_responses=True)
        return self._client

    async def publish(self, group_order_id: uuid.UUID) -> None:
        try:
            await self._redis().publish(self.channel(group_order_id), "changed")
        except (RedisError, OSError) as error:
            logger.warning("event not published group_order=%s error=%r", group_order_id, error)

    async def _listen(self) -> None:
        pattern = _glob_escape(self._prefix) + "*"
        while True:
            pubsub = self._redis().pubsub()
            try:
                await pubsub.psubscribe(pattern)
                async for message in pubsub.listen():
                    if message["type"] == "psubscribe":
                        self._subscribed.set()
                        # Whatever happened while not subscribed is re-read now.
                        self._deliver_to_all()
                    elif message["type"] == "pmessage":
                        self._on_message(str(message["channel"]))
            except (RedisError, OSError) as error:
                logger.warning("events: Redis subscription lost (%r); reconnecting", error)
            finally:
                self._subscribed.clear()
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(RECONNECT_DELAY_SECONDS)

    def _on_message(self, channel: str) -> None:
        try:
            group_order_id = uuid.UUID(channel.removeprefix(self._prefix))
        except ValueError:
            return
        self._deliver(group_order_id)

    async def close(self) -> None:
        await self._stop_listening()
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class PostgresEventBus(ListeningEventBus):
    """Events through ``NOTIFY`` on one channel of the service's PostgreSQL database; the
    payload is the group order's id. Deployments on other databases never meet."""

    broker = "PostgreSQL"

    def __init__(self, dsn: str, channel: str = POSTGRES_CHANNEL) -> None:
        super().__init__()
        self._dsn = dsn
        self.channel = channel
        self._publisher: asyncpg.Connection | None = None
        self._publishing = asyncio.Lock()

    async def publish(self, group_order_id: uuid.UUID) -> None:
        async with self._publishing:
            try:
                if self._publisher is None or self._publisher.is_closed():
                    self._publisher = await asyncpg.connect(self._dsn, timeout=5)
                await self._publisher.execute(
                    "SELECT pg_notify($1, $2)", self.channel, str(group_order_id)
                )
            except (asyncpg.PostgresError, OSError, TimeoutError) as error:
                logger.warning("event not published group_order=%s error=%r", group_order_id, error)
                await self._drop_publisher()

    async def _drop_publisher(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            with contextlib.suppress(asyncpg.PostgresError, OSError):
                publisher.terminate()

    def _on_notification(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            group_order_id = uuid.UUID(payload)
        except ValueError:
            return
        self._deliver(group_order_id)

    async def _listen(self) -> None:
        while True:
            lost = asyncio.Event()
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(self._dsn, timeout=5)
                connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                await connection.add_listener(self.channel, self._on_notification)
                self._subscribed.set()
                # Whatever happened while not listening is re-read now.
                self._deliver_to_all()
                while not lost.is_set():
                    # A server that went away without closing the socket is found here.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), KEEPALIVE_SECONDS)
                    if not lost.is_set():
                        await connection.execute("SELECT 1", timeout=5)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as error:
                logger.warning("events: PostgreSQL listener lost (%r); reconnecting", error)
            finally:
                self._subscribed.clear()
                if connection is not None:
                    connection.terminate()
            await asyncio.sleep(RECONNECT_DELAY_SECONDS)

    async def close(self) -> None:
        await self._stop_listening()
        async with self._publishing:
            await self._drop_publisher()


def create_event_bus(settings: Settings) -> EventBus:
    """Redis pub/sub when ``redis_url`` is set; else PostgreSQL's ``LISTEN``/``NOTIFY``
    on PostgreSQL; else events within this process (SQLite)."""
    if settings.redis_url:
        return RedisEventBus(settings.redis_url, settings.redis_channel_prefix)
    if is_postgresql(settings.database_url):
        return PostgresEventBus(libpq_url(settings.database_url))
    return LocalEventBus()
