"""Consult media through a hub process (issue 5): call set-up time and the CPU of recording.

`python -m tests.benchmarks.media` (PostgreSQL and Redis on 127.0.0.1). One `telepharm serve
--no-worker` on a fresh database; from this process, aiortc participants (the test suite's
synthetic 320x240 camera at 30 fps and a tone) hold consults through it:
1. BENCH_CALLS (10) calls one after another: the time from the patient's offer to both peer
   connections ``connected`` (p50, max), on loopback;
2. one call recorded for BENCH_SECONDS (10): both consent, both pages open their send-only
   connection to the hub's recorder; the hub's CPU over that window, against the same window
   of the call unrecorded (the hub carries no media then).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.benchmarks.consults import Client, add_patients, consult_hub
from tests.benchmarks.intake import cpu_seconds
from tests.support.consult_peer import ConsultPeer
from tests.support.media import MovingBarTrack, ToneTrack, answer_with, sending_peer

CALLS = int(os.environ.get("BENCH_CALLS", "10"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONSENT = "telehealth-consent-v1"


async def call(
    client: Client, session: aiohttp.ClientSession, consult: tuple[str, str]
) -> tuple[ConsultPeer, ConsultPeer]:
    consult_id, invite = consult
    headers = {"Origin": client.base}
    pharmacist = ConsultPeer("pharmacist", await session.ws_connect(client.ws_url, headers=headers))
    patient = ConsultPeer("patient", await session.ws_connect(client.ws_url, headers=headers))
    for peer in (pharmacist, patient):
        peer.start()
    await pharmacist.send(type="join", access_token=client.token, consult_id=consult_id)
    await pharmacist.seen("joined")
    await patient.send(type="join", invite=invite, consent_version=CONSENT)
    await pharmacist.seen("peer_joined")
    await pharmacist.send(type="admit")
    async with asyncio.timeout(30):
        await patient.connected.wait()
        await pharmacist.connected.wait()
    return pharmacist, patient


async def hub_cpu(pid: int, seconds: float) -> float:
    cpu, wall = cpu_seconds(pid), time.perf_counter()
    await asyncio.sleep(seconds)
    return (cpu_seconds(pid) - cpu) / (time.perf_counter() - wall)


async def run(base: str, token: str, pid: int) -> dict[str, Any]:
    patients = await add_patients(CALLS + 1)
    async with aiohttp.ClientSession() as session:
        client = Client(session, base, token)
        consults = [await client.schedule(p) for p in patients]
        setups = []
        for consult in consults[:CALLS]:
            pharmacist, patient = await call(client, session, consult)
            assert patient.offered_at is not None
            ready = max(patient.connected_at or 0, pharmacist.connected_at or 0)
            setups.append(ready - patient.offered_at)
            await pharmacist.send(type="end", notes="Bench.", counselling="accepted")
            await patient.seen("ended")
            await pharmacist.close()
            await patient.close()

        pharmacist, patient = await call(client, session, consults[CALLS])
        await asyncio.sleep(2)
        unrecorded = await hub_cpu(pid, SECONDS)
        for peer in (patient, pharmacist):
            await peer.send(type="recording_consent", consent=True)
        await patient.seen("recording")
        recorders = []
        for peer in (patient, pharmacist):
            pc = await sending_peer(MovingBarTrack(), ToneTrack())
            peer.extra.append(pc)
            await peer.send(type="record_offer", sdp=pc.localDescription.sdp)
            await answer_with(pc, (await peer.seen("record_answer"))["sdp"])
            recorders.append(pc)
        await asyncio.sleep(2)
        recorded = await hub_cpu(pid, SECONDS)
        await pharmacist.send(type="end", notes="Bench.", counselling="accepted")
        await patient.seen("ended")
        await pharmacist.close()
        await patient.close()
    return {
        "calls": len(setups),
        "offer_to_connected_p50_ms": round(statistics.median(setups) * 1000, 1),
        "offer_to_connected_max_ms": round(max(setups) * 1000, 1),
        "hub_cpu_call_unrecorded": f"{unrecorded:.1%} of a core",
        "hub_cpu_call_recorded_both_parties": f"{recorded:.1%} of a core",
        "recording_cpu_per_consult": f"{recorded - unrecorded:.1%} of a core",
    }


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-media-"))
    with consult_hub(work) as (base, token, pid):
        results = asyncio.run(run(base, token, pid))
    print(json.dumps(results, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
