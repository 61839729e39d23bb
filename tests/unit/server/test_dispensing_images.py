"""Fill images: what :func:`prepare` keeps of an upload, and the encrypted vault."""

from __future__ import annotations

import asyncio
import io
import os
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image, ImageCms, ImageFile, PngImagePlugin

from server.dispensing.images import (
    HEADER,
    JPEG,
    PNG,
    ImageCorrupt,
    ImageExists,
    ImageLimits,
    ImageNotFound,
    ImageRefused,
    ImageVault,
    PreparedImage,
    image_vault,
    prepare,
    prepare_in_thread,
)
from server.settings import Settings, SettingsError

RED = (220, 20, 20)
BLUE = (20, 20, 220)
#: markers a clean baseline JPEG may hold: SOI, APP0 (JFIF), DQT, SOF0, DHT, SOS
CLEAN_JPEG_MARKERS = {0xD8, 0xE0, 0xDB, 0xC0, 0xC4, 0xDA}


def two_halves(size: tuple[int, int] = (64, 32), mode: str = "RGB") -> Image.Image:
    """Red on the left, blue on the right: which way up it came out shows."""
    image = Image.new(mode, size, BLUE)
    image.paste(RED, (0, 0, size[0] // 2, size[1]))
    return image


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def jpeg_with_metadata(orientation: int = 6, profile: bool = True) -> bytes:
    """A phone's photo: EXIF with GPS and orientation, XMP, an ICC profile, a comment."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0xA431] = "SERIAL-0001"  # BodySerialNumber
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (40.0, 26.0, 46.0), 3: "W", 4: (79.0, 58.0, 56.0)})
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>patient photo</rdf:RDF></x:xmpmeta>'
    return encode(
        two_halves(),
        "JPEG",
        exif=exif,
        icc_profile=icc if profile else None,
        comment=b"taken at 12 Main St",
        xmp=xmp,
        quality=95,
    )


def jpeg_markers(data: bytes) -> set[int]:
    """The markers of the JPEG's segments up to the start of scan."""
    assert data[:2] == b"\xff\xd8"
    found = {0xD8}
    at = 2
    while at < len(data):
        assert data[at] == 0xFF
        marker = data[at + 1]
        found.add(marker)
        if marker == 0xDA:
            return found
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        at += 2 + length
    raise AssertionError("no start of scan")


def png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        chunks.append(data[at + 4 : at + 8])
        at += 12 + length
    return chunks


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int) -> bytes:
    """A PNG of a few dozen bytes whose header declares ``width`` x ``height``."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small real JPEG with its frame header changed to declare ``width`` x ``height``."""
    data = bytearray(encode(two_halves((16, 16)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def opened(prepared: PreparedImage) -> Image.Image:
    image = Image.open(io.BytesIO(prepared.data))
    image.load()
    return image


# --- prepare -------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", [True, False], ids=["icc", "no-icc"])
@pytest.mark.parametrize("orientation", [6, 1], ids=["turned", "upright"])
def test_a_phone_jpeg_loses_its_gps_and_all_metadata(profile: bool, orientation: int) -> None:
    source = jpeg_with_metadata(orientation, profile)
    assert b"SERIAL-0001" in source  # the fixture does carry what must go

    prepared = prepare(source, "image/jpeg")

    assert prepared.media_type == JPEG
    assert jpeg_markers(prepared.data) <= CLEAN_JPEG_MARKERS
    for leak in (b"Exif", b"SERIAL-0001", b"PhoneMaker", b"xmpmeta", b"Main St", b"ICC_PROFILE"):
        assert leak not in prepared.data
    image = opened(prepared)
    assert len(image.getexif()) == 0
    assert not {"icc_profile", "exif", "xmp", "comment"} & set(image.info)


def test_a_phone_jpeg_is_turned_upright() -> None:
    prepared = prepare(jpeg_with_metadata(orientation=6), "image/jpeg")
    image = opened(prepared)
    # orientation 6: shown turned a quarter clockwise, so the left (red) half is now on top
    assert (prepared.width, prepared.height) == (32, 64) == image.size
    top, bottom = image.getpixel((16, 8)), image.getpixel((16, 56))
    assert isinstance(top, tuple)
    assert isinstance(bottom, tuple)
    assert top[0] > 150 > top[2]
    assert bottom[2] > 150 > bottom[0]


def swapped_primaries() -> bytes:
    """sRGB's profile with its red and green primaries swapped: an RGB profile whose colours
    are plainly not sRGB's."""
    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    (count,) = struct.unpack(">I", profile[128:132])
    entries = {bytes(profile[132 + 12 * i : 136 + 12 * i]): 132 + 12 * i for i in range(count)}
    red, green = entries[b"rXYZ"], entries[b"gXYZ"]
    profile[red + 4 : red + 12], profile[green + 4 : green + 12] = (
        profile[green + 4 : green + 12],
        profile[red + 4 : red + 12],
    )
    return bytes(profile)


def test_a_profile_is_applied_then_dropped() -> None:
    source = encode(two_halves(), "JPEG", icc_profile=swapped_primaries(), quality=95)
    converted = prepare(source, None)
    assert b"ICC_PROFILE" not in converted.data
    red, green, _ = opened(converted).getpixel((8, 16))  # type: ignore[misc]
    assert green > red  # what the profile calls red is sRGB's green


@pytest.mark.parametrize(
    ("orientation", "size", "red_at"),
    [(1, (64, 32), (8, 16)), (3, (64, 32), (56, 16)), (8, (32, 64), (16, 56))],
)
def test_each_orientation_comes_out_upright(
    orientation: int, size: tuple[int, int], red_at: tuple[int, int]
) -> None:
    image = opened(prepare(jpeg_with_metadata(orientation), "image/jpeg"))
    assert image.size == size
    pixel = image.getpixel(red_at)
    assert isinstance(pixel, tuple)
    assert pixel[0] > 150 > pixel[2]


BROKEN_EXIF = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00\x12\x01\x03"


# the hub's own filter (server.dispensing.images), which the tests' "error" filter overrides
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
def test_broken_exif_is_read_as_none() -> None:
    prepared = prepare(encode(two_halves(), "JPEG", exif=BROKEN_EXIF), "image/jpeg")
    assert opened(prepared).size == (64, 32)
    assert b"Exif" not in prepared.data


def test_where_warnings_are_errors_broken_exif_is_refused_not_a_crash() -> None:
    with pytest.raises(ImageRefused) as refused:
        prepare(encode(two_halves(), "JPEG", exif=BROKEN_EXIF), "image/jpeg")
    assert refused.value.code == "undecodable"


def test_a_png_keeps_its_type_and_loses_text_exif_and_profile_chunks() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "patient Jane Example, DOB 1970-01-01")
    info.add_itxt("Description", "taken at 12 Main St", lang="en")
    info.add_text("Software", "PhoneCam 1.0", zip=True)
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = encode(two_halves(), "PNG", pnginfo=info, exif=exif, icc_profile=icc)
    assert {b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"iCCP"} <= set(png_chunks(source))

    prepared = prepare(source, "image/png")

    assert prepared.media_type == PNG
    assert set(png_chunks(prepared.data)) == {b"IHDR", b"IDAT", b"IEND"}
    assert b"Jane" not in prepared.data
    assert opened(prepared).getpixel((8, 16)) == RED


def test_a_transparent_png_stays_transparent() -> None:
    image = two_halves(mode="RGBA")
    image.putpixel((0, 0), (0, 0, 0, 0))
    prepared = prepare(encode(image, "PNG"), "image/png")
    out = opened(prepared)
    assert out.mode == "RGBA"
    assert out.getpixel((0, 0)) == (0, 0, 0, 0)


def test_webp_is_kept_as_jpeg_and_transparency_becomes_white() -> None:
    image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    image.paste((*RED, 255), (0, 0, 16, 32))
    prepared = prepare(encode(image, "WEBP", lossless=True), "image/webp")
    assert prepared.media_type == JPEG
    assert prepared.source_type == "image/webp"
    out = opened(prepared)
    right = out.getpixel((28, 16))
    assert isinstance(right, tuple)
    assert min(right) > 240


def test_a_cmyk_jpeg_becomes_rgb() -> None:
    prepared = prepare(encode(two_halves().convert("CMYK"), "JPEG"), None)
    assert opened(prepared).mode == "RGB"


def test_a_png_declared_as_jpeg_is_treated_as_the_png_it_is() -> None:
    prepared = prepare(encode(two_halves(), "PNG"), "image/jpeg")
    assert prepared.media_type == PNG
    assert prepared.source_type == PNG
    assert not prepared.declared_matches
    assert prepare(encode(two_halves(), "PNG"), "image/png").declared_matches


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        encode(two_halves(), "GIF"),
        encode(two_halves(), "BMP"),
        encode(two_halves(), "TIFF"),
        b"",
    ],
    ids=["pdf", "svg", "gif", "bmp", "tiff", "empty"],
)
def test_anything_but_jpeg_png_or_webp_is_refused_whatever_it_claims(data: bytes) -> None:
    with pytest.raises(ImageRefused) as refused:
        prepare(data, "image/jpeg")
    assert refused.value.code == "unsupported_type"


def test_too_many_bytes_is_refused_before_anything_else() -> None:
    source = encode(two_halves(), "PNG")
    with pytest.raises(ImageRefused) as refused:
        prepare(source, "image/png", ImageLimits(max_bytes=len(source) - 1))
    assert refused.value.code == "too_large"
    assert prepare(source, "image/png", ImageLimits(max_bytes=len(source))).width == 64


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def load(self: ImageFile.ImageFile) -> None:
        raise AssertionError("a refused bomb must not be decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


@pytest.mark.usefixtures("no_decoding")
@pytest.mark.parametrize(
    "data",
    [
        png_declaring(100_000, 100_000),  # beyond Pillow's own guard too
        png_declaring(8_000, 8_000),  # 64 MP: beyond the configured 40 MP only
        jpeg_declaring(60_000, 60_000),
        jpeg_declaring(7_000, 7_000),
    ],
    ids=["png-10G", "png-64M", "jpeg-3.6G", "jpeg-49M"],
)
def test_a_decompression_bomb_is_refused_from_its_header_quickly(data: bytes) -> None:
    assert len(data) < 1000
    started = time.perf_counter()
    with pytest.raises(ImageRefused) as refused:
        prepare(data, "image/png")
    assert refused.value.code == "too_many_pixels"
    assert time.perf_counter() - started < 0.5


def test_the_pixel_limit_is_the_configured_one() -> None:
    source = encode(two_halves((100, 100)), "PNG")
    with pytest.raises(ImageRefused) as refused:
        prepare(source, None, ImageLimits(max_pixels=9_999))
    assert refused.value.code == "too_many_pixels"
    assert prepare(source, None, ImageLimits(max_pixels=10_000)).width == 100


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_truncated_image_is_refused(fmt: str) -> None:
    whole = encode(Image.effect_noise((256, 256), 64).convert("RGB"), fmt)
    with pytest.raises(ImageRefused) as refused:
        prepare(whole[: len(whole) // 2], None)
    assert refused.value.code == "undecodable"


def test_garbage_after_a_jpeg_signature_is_refused() -> None:
    with pytest.raises(ImageRefused) as refused:
        prepare(b"\xff\xd8\xff\xe0" + os.urandom(2000), None)
    assert refused.value.code == "undecodable"


def test_a_large_image_is_shrunk_to_the_longest_edge_allowed() -> None:
    jpeg = prepare(encode(two_halves((3000, 2000)), "JPEG"), None, ImageLimits(max_edge=1000))
    assert (jpeg.width, jpeg.height) == (1000, 667)
    assert opened(jpeg).size == (1000, 667)
    png = prepare(encode(two_halves((2000, 100)), "PNG"), None, ImageLimits(max_edge=500))
    assert (png.width, png.height) == (500, 25)


def test_the_digest_is_of_the_kept_bytes() -> None:
    import hashlib

    prepared = prepare(jpeg_with_metadata(), None)
    assert prepared.sha256 == hashlib.sha256(prepared.data).hexdigest()


def test_prepare_runs_in_many_threads_at_once() -> None:
    sources = [
        encode(Image.effect_noise((300 + i, 200), 50).convert("RGB"), "JPEG") for i in range(8)
    ]
    expected = [prepare(source, None) for source in sources]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda s: prepare(s, None), sources * 4))
    assert [r.sha256 for r in results] == [e.sha256 for e in expected] * 4


async def test_prepare_in_thread_gives_what_prepare_gives() -> None:
    source = jpeg_with_metadata()
    assert await prepare_in_thread(source, "image/jpeg") == prepare(source, "image/jpeg")
    with pytest.raises(ImageRefused):
        await prepare_in_thread(b"GIF89a", "image/gif")


async def test_spare_pixel_blocks_are_given_back_once_the_pool_is_idle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from server.dispensing import images

    limits: list[int] = []
    real = Image.core.set_blocks_max
    monkeypatch.setattr(images, "_GIVE_BACK_AFTER", 0.0)
    monkeypatch.setattr(Image.core, "set_blocks_max", lambda n: (limits.append(n), real(n)))

    await asyncio.gather(*(prepare_in_thread(jpeg_with_metadata(), None) for _ in range(3)))
    assert images._giving_back is not None
    await images._giving_back

    assert limits[-2:] == [0, images._CACHED_BLOCKS]  # all freed, then the cache allowed again
    assert limits == [*sorted(limits[:-1], reverse=True), images._CACHED_BLOCKS]


# --- the vault ----------------------------------------------------------------------------------


@pytest.fixture
def vault(tmp_path: Path) -> ImageVault:
    return ImageVault(tmp_path / "fill-images", os.urandom(32))


@pytest.fixture
def photo() -> PreparedImage:
    return prepare(jpeg_with_metadata(), "image/jpeg")


def ids() -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    return uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


async def test_an_image_put_comes_back_the_same(vault: ImageVault, photo: PreparedImage) -> None:
    pharmacy, fill, image = ids()
    await vault.put(pharmacy, fill, image, photo)
    assert await vault.get(pharmacy, fill, image) == photo.data


async def test_the_file_holds_no_plaintext_and_is_named_by_uuids_only(
    vault: ImageVault, photo: PreparedImage, tmp_path: Path
) -> None:
    pharmacy, fill, image = ids()
    await vault.put(pharmacy, fill, image, photo)
    files = [p for p in (tmp_path / "fill-images").rglob("*") if p.is_file()]
    assert [p.relative_to(tmp_path / "fill-images").as_posix() for p in files] == [
        f"{pharmacy}/{fill}/{image}.img.enc"
    ]
    stored = files[0].read_bytes()
    assert stored.startswith(HEADER)
    assert stored != photo.data
    assert b"\xff\xd8\xff" not in stored
    assert b"JFIF" not in stored
    assert photo.data[200:232] not in stored
    assert files[0].stat().st_mode & 0o777 == 0o600


async def test_a_file_moved_to_another_record_does_not_open(
    vault: ImageVault, photo: PreparedImage
) -> None:
    pharmacy, fill, image = ids()
    await vault.put(pharmacy, fill, image, photo)
    source = vault.path(pharmacy, fill, image)
    for elsewhere in [(pharmacy, uuid.uuid4(), image), (uuid.uuid4(), fill, image)]:
        elsewhere_path = vault.path(*elsewhere)
        elsewhere_path.parent.mkdir(parents=True)
        elsewhere_path.write_bytes(source.read_bytes())
        with pytest.raises(ImageCorrupt):
            await vault.get(*elsewhere)
    renamed = vault.path(pharmacy, fill, uuid.uuid4())
    renamed.write_bytes(source.read_bytes())
    with pytest.raises(ImageCorrupt):
        await vault.get(pharmacy, fill, uuid.UUID(renamed.name.split(".")[0]))


@pytest.mark.parametrize("damage", ["flip", "cut", "header"])
async def test_a_changed_file_does_not_open(
    vault: ImageVault, photo: PreparedImage, damage: str
) -> None:
    pharmacy, fill, image = ids()
    await vault.put(pharmacy, fill, image, photo)
    path = vault.path(pharmacy, fill, image)
    stored = bytearray(path.read_bytes())
    if damage == "flip":
        stored[len(stored) // 2] ^= 1
    elif damage == "cut":
        del stored[-100:]
    else:
        stored[len(HEADER) - 1] = 9
    path.write_bytes(bytes(stored))
    with pytest.raises(ImageCorrupt):
        await vault.get(pharmacy, fill, image)


async def test_another_key_does_not_open_it(
    vault: ImageVault, photo: PreparedImage, tmp_path: Path
) -> None:
    pharmacy, fill, image = ids()
    await vault.put(pharmacy, fill, image, photo)
    other = ImageVault(tmp_path / "fill-images", os.urandom(32))
    with pytest.raises(ImageCorrupt):
        await other.get(pharmacy, fill, image)


async def test_a_missing_image_is_not_found_and_not_corrupt(vault: ImageVault) -> None:
    with pytest.raises(ImageNotFound) as missing:
        await vault.get(*ids())
    assert not isinstance(missing.value, ImageCorrupt)


async def test_an_image_is_never_overwritten(vault: ImageVault, photo: PreparedImage) -> None:
    pharmacy, fill, image = ids()
    await vault.put(pharmacy, fill, image, photo)
    other = prepare(encode(two_halves(), "PNG"), None)
    with pytest.raises(ImageExists):
        await vault.put(pharmacy, fill, image, other)
    assert await vault.get(pharmacy, fill, image) == photo.data
    assert [p.name for p in vault.path(pharmacy, fill, image).parent.iterdir()] == [
        f"{image}.img.enc"
    ]


async def test_delete_removes_the_image_and_may_be_repeated(
    vault: ImageVault, photo: PreparedImage
) -> None:
    pharmacy, fill, image = ids()
    await vault.put(pharmacy, fill, image, photo)
    await vault.delete(pharmacy, fill, image)
    await vault.delete(pharmacy, fill, image)
    with pytest.raises(ImageNotFound):
        await vault.get(pharmacy, fill, image)


def test_only_uuids_make_a_path(vault: ImageVault) -> None:
    pharmacy, fill, _ = ids()
    with pytest.raises(ValueError, match="badly formed"):
        vault.path(pharmacy, fill, "../../etc/passwd")  # type: ignore[arg-type]


def test_puts_from_many_threads_each_keep_their_own_image(vault: ImageVault) -> None:
    pharmacy, fill = uuid.uuid4(), uuid.uuid4()
    images = {uuid.uuid4(): os.urandom(50_000 + n) for n in range(48)}
    started = threading.Barrier(8)

    def put(item: tuple[uuid.UUID, bytes]) -> None:
        if item[0] in first_eight:  # the first eight start together, to overlap for certain
            started.wait(timeout=10)
        vault.put_sync(pharmacy, fill, *item)

    first_eight = set(list(images)[:8])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, images.items()))
    for image_id, data in images.items():
        assert vault.get_sync(pharmacy, fill, image_id) == data
    assert len(list(vault.path(pharmacy, fill, uuid.uuid4()).parent.iterdir())) == 48


def test_the_hub_vault_makes_its_own_key_once(tmp_path: Path, photo: PreparedImage) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    (tmp_path / "var" / "keys").mkdir(parents=True)
    first = image_vault(settings)
    key_file = tmp_path / "var" / "keys" / "fill-images.key"
    assert len(key_file.read_bytes()) == 32
    ids_ = ids()
    first.put_sync(*ids_, photo.data)
    assert image_vault(settings).get_sync(*ids_) == photo.data
    assert (tmp_path / "var" / "fill-images" / str(ids_[0])).is_dir()


# --- settings -----------------------------------------------------------------------------------


def test_image_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "TELEPHARM_MAX_IMAGE_BYTES": "1048576",
            "TELEPHARM_MAX_IMAGE_PIXELS": "12000000",
            "TELEPHARM_MAX_IMAGE_EDGE": "2048",
        }
    )
    assert ImageLimits.of(settings) == ImageLimits(1048576, 12_000_000, 2048)
    assert ImageLimits.of(Settings()) == ImageLimits()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_IMAGE_PIXELS", "100000001"),
        ("MAX_IMAGE_PIXELS", "0"),
        ("MAX_IMAGE_BYTES", "10"),
        ("MAX_IMAGE_EDGE", "12"),
        ("MAX_IMAGE_EDGE", "big"),
    ],
)
def test_image_settings_out_of_bounds_are_refused(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({f"TELEPHARM_{name}": value})


def _noise(mode: str) -> Image.Image:
    return Image.effect_noise((50, 40), 60).convert("RGB").convert(mode)


@pytest.mark.parametrize(
    ("source", "media_type", "mode"),
    [
        (lambda: encode(_noise("L").convert("I;16"), "PNG"), PNG, "RGB"),
        (lambda: encode(_noise("LA"), "PNG"), PNG, "RGBA"),
        (lambda: encode(_noise("1"), "PNG"), PNG, "L"),
        (lambda: encode(_noise("P"), "PNG"), PNG, "RGB"),
        (lambda: encode(_noise("P"), "PNG", transparency=0), PNG, "RGBA"),
        (lambda: encode(_noise("RGB"), "PNG", transparency=(0, 0, 0)), PNG, "RGBA"),
        (
            lambda: encode(_noise("RGB"), "PNG", save_all=True, append_images=[_noise("RGB")]),
            PNG,
            "RGB",
        ),
        (
            lambda: encode(_noise("RGB"), "WEBP", save_all=True, append_images=[_noise("RGB")]),
            JPEG,
            "RGB",
        ),
        (lambda: encode(_noise("L"), "JPEG"), JPEG, "L"),
        (lambda: encode(_noise("RGB"), "JPEG", progressive=True), JPEG, "RGB"),
    ],
    ids=[
        "png16",
        "la",
        "bilevel",
        "palette",
        "palette-alpha",
        "rgb-trns",
        "apng",
        "webp-anim",
        "grey-jpeg",
        "progressive",
    ],
)
def test_every_kind_of_accepted_image_becomes_one_plain_frame(
    source: Callable[[], bytes], media_type: str, mode: str
) -> None:
    prepared = prepare(source(), None)
    image = opened(prepared)
    assert prepared.media_type == media_type
    assert image.mode == mode
    assert getattr(image, "n_frames", 1) == 1
    assert image.size == (50, 40)
