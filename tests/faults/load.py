"""A steady NewRx load for fault tests: an open-loop sender on its own thread that remembers
every message it sent and what the hub answered, then resends the ones whose answer was unclear,
as a prescriber's system would once the hub is back."""

from __future__ import annotations

import asyncio
import itertools
import re
import ssl
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from xml.sax.saxutils import escape

import aiohttp

SAMPLE = resources.files("server").joinpath("samples/newrx.xml").read_bytes()
SAMPLE_DRUG = b"lisinopril 10 MG Oral Tablet"
#: the sender's own deadline for one answer; a stall longer than this leaves answers unclear
CLIENT_TIMEOUT = 5.0
ACKNOWLEDGED = "000"
#: the hub's own faults, which the SCRIPT standard says to resend
RESEND_CODES = ("601", "602")
_CODE = re.compile(rb"<Error>\s*<Code>(\d+)</Code>")


@dataclass
class Sent:
    body: bytes
    at: float
    answers: list[str] = field(default_factory=list)
    #: seconds from the send to the first answer
    latency: float | None = None

    @property
    def acknowledged(self) -> bool:
        return ACKNOWLEDGED in self.answers

    @property
    def unclear(self) -> bool:
        return not self.answers or _unclear(self.answers[-1])


def _patient_name(number: int) -> bytes:
    """A synthetic last name per patient number (letters only, as names are)."""
    letters = ""
    while True:
        number, digit = divmod(number, 26)
        letters += chr(ord("A") + digit)
        if not number:
            return f"TESTPATIENT{letters}<".encode()


def _unclear(answer: str) -> bool:
    return answer in RESEND_CODES or answer.startswith(("http 5", "no answer"))


class Load:
    def __init__(
        self,
        base: str,
        token: str | Callable[[], str],
        rate: float,
        patients: int = 1,
        tls: ssl.SSLContext | None = None,
        drugs: Sequence[str] = (),
    ) -> None:
        """``token``: a bearer token, or what gets a fresh one (called at the start and again
        when the hub answers 401, as a prescriber's system does when its token expires).
        ``drugs``: descriptions the messages name in turn, each patient's different from
        message to message (none: the sample's one drug)."""
        self.url = base + "/ncpdp/script"
        self._renew = token if callable(token) else None
        self._renewing = asyncio.Lock()
        #: the trust for an https ``base`` (nginx's certificate); None: the system's
        self.tls = tls
        #: how many different patients the messages are for (one: the sample's own)
        self.patients = patients
        self.drugs = [escape(d).encode() for d in drugs]
        first = token() if callable(token) else token
        self.headers = {"Content-Type": "application/xml", "Authorization": f"Bearer {first}"}
        self.rate = rate
        self.sent: dict[str, Sent] = {}
        #: requests sent and not answered yet (a fault that lands then leaves an answer unclear)
        self.in_flight = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def acknowledged_since(self, moment: float) -> int:
        """How many messages sent at or after ``moment`` (monotonic) were acknowledged."""
        return sum(1 for s in list(self.sent.values()) if s.at >= moment and s.acknowledged)

    def answers(self) -> dict[str, int]:
        """How often each first answer came back (for the report)."""
        counts: dict[str, int] = {}
        for s in list(self.sent.values()):
            first = s.answers[0] if s.answers else "none"
            counts[first] = counts.get(first, 0) + 1
        return counts

    def latency_ms(self, percentile: int) -> float | None:
        """The ``percentile`` of the first answers' latencies, in milliseconds."""
        latencies = [s.latency for s in list(self.sent.values()) if s.latency is not None]
        if len(latencies) < 2:
            return None
        return round(statistics.quantiles(latencies, n=100)[percentile - 1] * 1000, 1)

    async def _run(self) -> None:
        self._renewing = asyncio.Lock()  # this loop's
        timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT)
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=300, ssl=self.tls or True), timeout=timeout
        ) as session:
            tasks: set[asyncio.Task[None]] = set()
            start = time.monotonic()
            for i in itertools.count():
                if self._stop.is_set():
                    break
                await asyncio.sleep(max(0.0, start + i / self.rate - time.monotonic()))
                task = asyncio.create_task(self._send_new(session))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks)

    async def _send_new(self, session: aiohttp.ClientSession) -> None:
        message_id = uuid.uuid4().hex
        body = SAMPLE.replace(b"DEMO-MESSAGE-ID", message_id.encode())
        body = body.replace(b"DEMO-ORDER-1", f"ORD-{message_id}"[:35].encode())
        number = len(self.sent)
        if self.patients > 1:
            body = body.replace(b"TESTPATIENT<", _patient_name(number % self.patients))
        if self.drugs:
            # the drug moves on with each round of the patients: a patient's messages name
            # different drugs, and the patients of one round do not all get the same one
            drug = self.drugs[(number // self.patients + number * 7919) % len(self.drugs)]
            body = body.replace(SAMPLE_DRUG, drug)
        sent = Sent(body, time.monotonic())
        self.sent[message_id] = sent
        self.in_flight += 1
        try:
            sent.answers.append(await self._post(session, sent.body))
            sent.latency = time.monotonic() - sent.at
        finally:
            self.in_flight -= 1
        if not sent.unclear:
            sent.body = b""  # only unclear answers are resent: a long run keeps no bodies

    async def _post(self, session: aiohttp.ClientSession, body: bytes) -> str:
        headers = self.headers
        answer = await self._post_once(session, body, headers)
        if answer == "http 401" and self._renew is not None:
            await self._refresh(headers["Authorization"])
            answer = await self._post_once(session, body, self.headers)
        return answer

    async def _refresh(self, stale: str) -> None:
        """One new token for all the sends that found the old one expired."""
        async with self._renewing:
            if self.headers["Authorization"] == stale and self._renew is not None:
                token = await asyncio.to_thread(self._renew)
                self.headers = {**self.headers, "Authorization": f"Bearer {token}"}

    async def _post_once(
        self, session: aiohttp.ClientSession, body: bytes, headers: dict[str, str]
    ) -> str:
        try:
            async with session.post(self.url, data=body, headers=headers) as response:
                reply = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"no answer ({type(exc).__name__})"
        if response.status != 200:
            return f"http {response.status}"
        if b"<Status>" in reply:
            return ACKNOWLEDGED
        code = _CODE.search(reply)
        return code.group(1).decode() if code else "unreadable reply"

    def resend_unclear(self, attempts: int = 5) -> None:
        """Send again, body for body, every message whose last answer was unclear, until the
        answer is clear or ``attempts`` are spent."""
        asyncio.run(self._resend_all(attempts))

    async def _resend_all(self, attempts: int) -> None:
        self._renewing = asyncio.Lock()  # this loop's
        timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT * 2)
        limit = asyncio.Semaphore(16)
        connector = aiohttp.TCPConnector(ssl=self.tls or True)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def resend(sent: Sent) -> None:
                async with limit:
                    for _ in range(attempts):
                        sent.answers.append(await self._post(session, sent.body))
                        if not sent.unclear:
                            return
                        await asyncio.sleep(1)

            await asyncio.gather(*(resend(s) for s in self.sent.values() if s.unclear))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(CLIENT_TIMEOUT * 3)


@contextmanager
def steady_load(base: str, token: str, rate: float) -> Iterator[Load]:
    load = Load(base, token, rate)
    load.start()
    try:
        yield load
    finally:
        load.stop()
