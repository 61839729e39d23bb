"""A fill's images on the real app, database and vault: the three product photos taken while
filling (required before the product check, shown beside it), the signature drawn at the
hand-over (required for it), retakes, every refusal, other pharmacies, the views audited, and
what lies on disk."""

from __future__ import annotations

import dataclasses
import io
import struct
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageCms
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.audit.models import AuditEvent
from server.dispensing import photos
from server.dispensing.images import HEADER
from server.dispensing.models import FillImage
from server.settings import Settings
from server.worker.checking import Checker
from tests.conftest import OTHER_PHARMACY, Hub
from tests.functional import test_fills as fills
from tests.functional.fill_helpers import (
    add_image,
    counted_fill,
    fill_detail,
    fill_queue,
    ok,
    photograph,
    picture,
    print_label,
    sign,
    step,
)
from tests.functional.test_fills import HAND_OVER, Team, approved
from tests.functional.verification_helpers import bearer, staff

LIMIT = 256 * 1024
# the fill flow's fixtures: its products imported, the prescriber, the team
products, prescriber, checker, team = fills.products, fills.prescriber, fills.checker, fills.team


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, max_image_bytes=LIMIT)


def phone_photo() -> bytes:
    """A phone's JPEG: EXIF with a GPS position, the maker and a serial number, an ICC profile,
    XMP and a comment."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0xA431] = "SERIAL-0001"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (40.0, 26.0, 46.0), 3: "W", 4: (79.0, 58.0, 56.0)})
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = io.BytesIO()
    Image.new("RGB", (80, 60), (30, 120, 200)).save(
        out,
        "JPEG",
        exif=exif,
        icc_profile=icc,
        comment=b"taken at 12 Main St",
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">where</x:xmpmeta>',
    )
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A PNG of a few dozen bytes whose header declares ``width`` x ``height``: a bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + idat + chunk(b"IEND", b"")


async def filling(hub: Hub, checker: Checker, team: Team) -> str:
    """A fill started, scanned, counted and its label printed: only its photos missing."""
    rx_id, _ = await approved(hub, checker, team)
    fill_id = await counted_fill(hub, team.tom, rx_id)
    await print_label(hub, team.tom, fill_id)
    return fill_id


async def image_bytes(hub: Hub, token: str, href: str) -> tuple[int, bytes, Any]:
    response = await hub.client.get(href, headers=bearer(token))
    return response.status, await response.read(), response.headers


async def image_list(hub: Hub, token: str, fill_id: str) -> tuple[int, dict[str, Any]]:
    response = await hub.client.get(f"/api/v1/fills/{fill_id}/images", headers=bearer(token))
    return response.status, await response.json()


def stored_files(settings: Settings) -> list[Path]:
    root = settings.data_dir / "fill-images"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_the_product_photos_are_required_kept_clean_and_shown_beside_the_check(
    hub: Hub, checker: Checker, team: Team
) -> None:
    fill_id = await filling(hub, checker, team)
    status, body = await step(hub, team.tom, fill_id, "submit")
    assert (status, body["code"]) == (422, "fill_incomplete")
    for words in photos.PRODUCT_PHOTOS.values():
        assert words in body["detail"]

    # the stock bottle as a phone sends it (raw body), the count in a form, the vial as WebP
    bottle = await ok(add_image(hub, team.tom, fill_id, "stock_bottle", phone_photo()))
    assert (bottle["kind"], bottle["media_type"], bottle["width"]) == (
        "stock_bottle",
        "image/jpeg",
        80,
    )
    form = {"image": io.BytesIO(picture("PNG"))}
    response = await hub.client.post(
        f"/api/v1/fills/{fill_id}/images",
        params={"kind": "counted"},
        data=form,
        headers=bearer(team.tom),
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["media_type"] == "image/png"
    status, body = await step(hub, team.tom, fill_id, "submit")
    assert (status, body["code"]) == (422, "fill_incomplete")
    assert "the photo of the label on the vial" in body["detail"]
    assert "the photo of the stock bottle" not in body["detail"]
    assert "the photo of the counted product" not in body["detail"]
    await ok(add_image(hub, team.tom, fill_id, "vial_label", picture("WEBP"), "image/webp"))
    await ok(step(hub, team.tom, fill_id, "submit"))

    # in the product check, nothing of the product is photographed, and no signature yet
    status, body = await add_image(hub, team.tom, fill_id, "counted")
    assert (status, body["code"]) == (409, "wrong_state")
    status, body = await add_image(hub, team.tom, fill_id, "signature", picture("PNG"), "image/png")
    assert (status, body["code"]) == (409, "wrong_state")

    # the pharmacist's screen: the three side by side, each served clean, each view audited
    status, fill = await fill_detail(hub, team.bob, fill_id)
    assert status == 200
    assert [i["kind"] for i in fill["images"]] == ["stock_bottle", "counted", "vial_label"]
    for image in fill["images"]:
        status, data, headers = await image_bytes(hub, team.bob, image["href"])
        assert status == 200
        assert headers["Content-Type"] == image["media_type"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert image["size"] == len(data)
    status, data, _ = await image_bytes(hub, team.bob, fill["images"][0]["href"])
    shown = Image.open(io.BytesIO(data))
    assert dict(shown.getexif()) == {}
    assert shown.getexif().get_ifd(0x8825) == {}
    assert "icc_profile" not in shown.info
    assert b"Main St" not in data
    assert b"SERIAL-0001" not in data
    assert await hub.audit_outcomes("fill.image_read") == ["success"] * 4
    assert await hub.audit_outcomes("fill.image") == ["success"] * 3 + ["refused"] * 2
    await ok(step(hub, team.bob, fill_id, "approve"))


async def test_a_retake_replaces_the_image_in_the_check_and_keeps_the_old_on_record(
    hub: Hub, checker: Checker, team: Team
) -> None:
    fill_id = await filling(hub, checker, team)
    await photograph(hub, team.tom, fill_id)
    await ok(step(hub, team.tom, fill_id, "submit"))
    await ok(step(hub, team.bob, fill_id, "send-back", {"reason": "the count is blurred"}))
    _, before = await fill_detail(hub, team.tom, fill_id)
    first = next(i for i in before["images"] if i["kind"] == "counted")
    retake = await ok(add_image(hub, team.tom, fill_id, "counted", picture(color=(0, 90, 0))))
    await ok(step(hub, team.tom, fill_id, "submit"))

    _, fill = await fill_detail(hub, team.bob, fill_id)
    counted = [i for i in fill["images"] if i["kind"] == "counted"]
    assert [i["id"] for i in counted] == [retake["id"]]
    status, listed = await image_list(hub, team.bob, fill_id)
    assert status == 200
    old = next(i for i in listed["items"] if i["id"] == first["id"])
    assert old["superseded_by"] == retake["id"]
    assert len(listed["items"]) == 4
    status, _, _ = await image_bytes(hub, team.bob, old["href"])
    assert status == 200
    async with hub.db.sessions() as session:
        audited = await session.scalar(
            select(AuditEvent.detail).where(
                AuditEvent.action == "fill.image", AuditEvent.resource_id == retake["id"]
            )
        )
    assert audited is not None
    assert audited["replaced"] == [first["id"]]


async def test_refused_uploads(hub: Hub, checker: Checker, team: Team, settings: Settings) -> None:
    fill_id = await filling(hub, checker, team)
    status, body = await add_image(
        hub, team.tom, fill_id, "stock_bottle", b"\xff\xd8\xff" + b"\0" * LIMIT
    )
    assert (status, body["code"]) == (413, "payload_too_large")
    status, body = await add_image(
        hub, team.tom, fill_id, "stock_bottle", b"GIF89a....", "image/png"
    )
    assert (status, body["code"]) == (415, "unsupported_media_type")
    status, body = await add_image(hub, team.tom, fill_id, "stock_bottle", b"hello", "text/plain")
    assert (status, body["code"]) == (415, "unsupported_media_type")
    status, body = await add_image(
        hub, team.tom, fill_id, "stock_bottle", png_declaring(20_000, 20_000), "image/png"
    )
    assert (status, body["code"]) == (422, "too_many_pixels")
    status, body = await add_image(hub, team.tom, fill_id, "stock_bottle", picture()[:200])
    assert (status, body["code"]) == (422, "undecodable")
    status, body = await add_image(hub, team.tom, fill_id, "selfie")
    assert status == 400
    assert await hub.audit_outcomes("fill.image") == ["refused"] * 5
    assert stored_files(settings) == []
    # a prescriber's client is not staff
    status, _ = await add_image(hub, team.prescriber_token, fill_id, "stock_bottle")
    assert status in (401, 403)


async def test_another_pharmacys_fill_and_images_answer_404(
    hub: Hub, checker: Checker, team: Team
) -> None:
    fill_id = await filling(hub, checker, team)
    await photograph(hub, team.tom, fill_id)
    _, fill = await fill_detail(hub, team.tom, fill_id)
    await hub.pharmacy(**OTHER_PHARMACY)
    mallory = await staff(hub, "mallory", pharmacy=OTHER_PHARMACY["ncpdpid"])
    status, body = await add_image(hub, mallory, fill_id, "stock_bottle")
    assert (status, body["code"]) == (404, "not_found")
    assert (await image_list(hub, mallory, fill_id))[0] == 404
    for image in fill["images"]:
        assert (await image_bytes(hub, mallory, image["href"]))[0] == 404
    # an image named under another fill of the same pharmacy is not found either
    wrong = f"/api/v1/fills/{uuid.uuid4()}/images/{fill['images'][0]['id']}"
    assert (await image_bytes(hub, team.tom, wrong))[0] == 404
    assert await hub.audit_outcomes("fill.image_read") == ["not_found"] * 4
    assert (await hub.audit_outcomes("fill.image"))[-1] == "not_found"
    assert (await hub.audit_outcomes("fill.images"))[-1] == "not_found"


async def test_the_stored_file_is_ciphertext_and_a_changed_one_is_not_served(
    hub: Hub, checker: Checker, team: Team, settings: Settings
) -> None:
    fill_id = await filling(hub, checker, team)
    taken = await ok(add_image(hub, team.tom, fill_id, "stock_bottle"))
    _, served, _ = await image_bytes(hub, team.tom, taken["href"])
    [file] = stored_files(settings)
    assert file.name == f"{taken['id']}.img.enc"
    assert file.parent.name == fill_id
    stored = file.read_bytes()
    assert stored.startswith(HEADER)
    assert served not in stored
    assert served[:64] not in stored
    assert b"JFIF" not in stored
    # one byte changed: not served, audited as such
    changed = bytearray(stored)
    changed[len(changed) // 2] ^= 1
    file.write_bytes(bytes(changed))
    assert (await image_bytes(hub, team.tom, taken["href"]))[0] == 404
    assert await hub.audit_outcomes("fill.image_read") == ["success", "corrupt"]


async def test_a_failed_unit_of_work_leaves_no_file_behind(
    hub: Hub, checker: Checker, team: Team, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill_id = await filling(hub, checker, team)
    recorded = photos._record

    def record_then_fail(session: Session, *args: Any) -> list[str]:
        recorded(session, *args)  # the row is written, then the unit of work fails
        raise RuntimeError("the database went away")

    monkeypatch.setattr(photos, "_record", record_then_fail)
    status, _ = await add_image(hub, team.tom, fill_id, "stock_bottle")
    assert status == 500
    assert stored_files(settings) == []
    async with hub.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(FillImage)) == 0
    monkeypatch.setattr(photos, "_record", recorded)
    await ok(add_image(hub, team.tom, fill_id, "stock_bottle"))
    assert len(stored_files(settings)) == 1


async def test_the_hand_over_needs_the_signature_drawn(
    hub: Hub, checker: Checker, team: Team
) -> None:
    fill_id = await filling(hub, checker, team)
    status, body = await add_image(hub, team.tom, fill_id, "signature", picture("PNG"), "image/png")
    assert (status, body["code"]) == (409, "wrong_state")
    await photograph(hub, team.tom, fill_id)
    await ok(step(hub, team.tom, fill_id, "submit"))
    await ok(step(hub, team.bob, fill_id, "approve"))
    status, body = await step(hub, team.tom, fill_id, "hand-over", {**HAND_OVER, "signature": True})
    assert (status, body["code"]) == (422, "signature_required")
    signature = await sign(hub, team.tom, fill_id)
    assert (signature["kind"], signature["media_type"]) == ("signature", "image/png")
    await ok(step(hub, team.tom, fill_id, "hand-over", HAND_OVER))
    _, fill = await fill_detail(hub, team.tom, fill_id)
    assert fill["hand_over"]["signature"] is True
    assert "signature" in [i["kind"] for i in fill["images"]]
    # handed over: nothing more is added
    status, body = await add_image(hub, team.tom, fill_id, "signature", picture("PNG"), "image/png")
    assert (status, body["code"]) == (409, "wrong_state")


async def test_a_queue_is_walked_page_by_page_in_order(
    hub: Hub, checker: Checker, team: Team
) -> None:
    started = [await filling(hub, checker, team) for _ in range(3)]
    seen: list[str] = []
    after: str | None = None
    for _ in range(4):
        params = {"state": "filling", "limit": "1", **({"after": after} if after else {})}
        page = await fill_queue(hub, team.bob, **params)
        seen.extend(i["id"] for i in page["items"])
        after = page["next"]
        if after is None:
            break
    assert seen == started
