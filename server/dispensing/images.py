"""The product images a technician takes while filling (stock bottle, counted product, label on
the vial): made safe to keep, then kept encrypted.

:func:`prepare` trusts nothing of an upload. Its type is what its bytes are (JPEG, PNG or WebP;
the client's claim decides nothing); it is bounded in bytes and, before any pixel is decoded,
in pixels (a small file may declare a huge image); it is decoded, turned upright by its EXIF
orientation, converted to sRGB by its ICC profile, shrunk past the longest edge allowed, and
encoded again (a PNG as PNG, anything else as JPEG) with no metadata at all: no EXIF (a phone's
GPS position, its serial number), no XMP, no ICC profile, no comments or text chunks. What is
kept is only the pixels, so what the pharmacist sees is what is stored and nothing else rides
along. It is CPU-bound and thread-safe: handlers call :func:`prepare_in_thread`, which runs
it in a pool of its own (one thread per core), so that a burst of uploads queues instead of
holding a decoded photo (48 MB at 12 MP) per thread of the default executor.

Importing this module sets process-wide state, once: Pillow's bomb guard and warnings, glibc's
mmap threshold, and Pillow's cache of freed pixel blocks (each explained where it is set; the
measurements behind them are in ``tests/benchmarks/README.md``, uploads.py).

:class:`ImageVault` keeps prepared images under ``<data dir>/fill-images``, one file each,
encrypted the way consult recordings are (:mod:`signaling.recording_format`: Tink's
AES-GCM-HKDF streaming AEAD, a fresh key derived per file) under a key of its own,
``keys/fill-images.key``, made on first use as the recordings' key is::

    file = MARKER + version byte (1) + Tink AES-GCM-HKDF streaming ciphertext
    aad  = MARKER + version + pharmacy id + fill id + image id (16 bytes each)

The associated data binds a file to its pharmacy, fill and image: a file copied or moved to
another record, or changed by a byte, fails to open. File and folder names are the three UUIDs,
nothing of the patient.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import io
import os
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import tink
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from PIL import Image, ImageCms

from signaling.recording_format import tink_streaming_aead

from ..auth.credentials import load_key
from ..settings import MAX_IMAGE_PIXELS_CEILING, MIB, Settings

JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
#: what an upload may be, by its bytes, and Pillow's name for each (it opens no other format)
_FORMATS = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP"}
JPEG_QUALITY = 85
_WHITE = (255, 255, 255)
_ORIENTATION = 0x0112
#: EXIF orientation → the transposition that makes the image upright
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# Pillow's own bomb guard, set explicitly rather than left at its default (~89 MP): it refuses
# at open, before decoding, anything over twice this and warns over it. The warning is made an
# error so that a bomb is never decoded whatever the warnings configuration; :func:`prepare`
# refuses above the configured limit (at most this) itself, also before decoding.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS_CEILING
warnings.simplefilter("error", Image.DecompressionBombWarning)
# Broken EXIF is read as none (Pillow reads it at open for the DPI, then :func:`_orientation`),
# without a warning on the hub's stderr for each such photo.
warnings.filterwarnings("ignore", "Corrupt EXIF data", UserWarning, r"PIL\.")
# Register every plugin now, not lazily on the first open, which threads could race.
Image.init()
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
#: images prepared at once in a process: each holds its decoded pixels (Pillow keeps RGB in 4
#: bytes a pixel: a 12 MP photo is 48 MB) up to twice over while it is turned, so a burst of
#: uploads waits here rather than multiplying that (the default executor's six threads on two
#: cores took the hub 800 MB up); one per core, as Pillow decodes and encodes without the GIL,
#: at most four
T = TypeVar("T")

PREPARE_THREADS = max(1, min(4, os.cpu_count() or 1))
_PREPARING = ThreadPoolExecutor(PREPARE_THREADS, thread_name_prefix="fill-images")
_M_MMAP_THRESHOLD = -3


def _return_large_blocks() -> None:
    """Have glibc's malloc map allocations of 1 MiB and more on their own and unmap them when
    freed. Its default threshold rises to the size of each large block freed, so after the
    first image Pillow's 16 MB pixel blocks (and the upload bodies) come from the heaps, which
    keep them: a burst of uploads left the hub ~150 MB larger for good (benchmarks/uploads.py).
    Setting it fixes the threshold for the whole process; few other allocations are as large."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    mallopt(_M_MMAP_THRESHOLD, MIB)


_return_large_blocks()
#: freed pixel blocks Pillow keeps for the next image (16 MB each: a 12 MP photo takes three),
#: so that a burst of uploads reuses them rather than mapping fresh memory for every image
#: (the kernel zeroing it cost ~30 ms of CPU a photo); enough for two images a thread, given
#: back (:func:`_give_back`) once the pool has had nothing to do for a while
_CACHED_BLOCKS = PREPARE_THREADS * 6
Image.core.set_blocks_max(_CACHED_BLOCKS)
_GIVE_BACK_AFTER = 2.0
#: images being prepared in the pool now, and the task giving the spare blocks back
_in_pool = 0
_giving_back: asyncio.Task[None] | None = None


class ImageRefused(Exception):
    """An upload that is not kept; ``code`` is stable: ``too_large``, ``unsupported_type``,
    ``undecodable`` or ``too_many_pixels``."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """Bounds on an upload: its bytes, its pixels (checked before decoding), and the longest
    edge kept (larger images are shrunk to it)."""

    max_bytes: int = 8 * MIB
    max_pixels: int = 40_000_000
    max_edge: int = 4096

    @classmethod
    def of(cls, settings: Settings) -> ImageLimits:
        return cls(settings.max_image_bytes, settings.max_image_pixels, settings.max_image_edge)


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """An image as it is kept: re-encoded pixels and nothing else."""

    data: bytes
    media_type: str
    width: int
    height: int
    #: hex SHA-256 of ``data``, for the record (and to notice an image stored twice)
    sha256: str
    #: what the upload's bytes were (the client's claim is not trusted)
    source_type: str
    #: whether the client's claim matched the bytes (a mismatch is worth noting, not refusing)
    declared_matches: bool


def sniff(data: bytes) -> str | None:
    """The media type the bytes are, of the three accepted; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return None


def prepare(
    data: bytes, declared_type: str | None, limits: ImageLimits = ImageLimits()
) -> PreparedImage:
    """The upload made safe to keep, or :class:`ImageRefused`. Blocking: run it in a thread."""
    if len(data) > limits.max_bytes:
        raise ImageRefused("too_large", f"An image may be at most {limits.max_bytes} bytes.")
    source = sniff(data)
    if source is None:
        raise ImageRefused("unsupported_type", "Send a JPEG, PNG or WebP image.")
    media_type = PNG if source == PNG else JPEG
    try:
        with Image.open(io.BytesIO(data), formats=(_FORMATS[source],)) as image:
            _check_pixels(image, limits)
            clean = _redraw(image, limits)
            if clean is image:  # unchanged: encode before closing frees its pixels
                encoded = _encode(clean, media_type)
        if clean is not image:  # a new image: the decoded original is freed by now
            encoded = _encode(clean, media_type)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(limits) from None
    except ImageRefused:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, UserWarning):
        # Pillow's ways of saying the bytes are not a whole, valid image of that format (its
        # warnings too, where a process makes them errors: the filter below does not)
        raise ImageRefused(
            "undecodable", "The image could not be read: damaged or cut short."
        ) from None
    return PreparedImage(
        data=encoded,
        media_type=media_type,
        width=clean.width,
        height=clean.height,
        sha256=hashlib.sha256(encoded).hexdigest(),
        source_type=source,
        declared_matches=(declared_type or "").strip().lower() == source,
    )


async def prepare_in_thread(
    data: bytes, declared_type: str | None, limits: ImageLimits = ImageLimits()
) -> PreparedImage:
    """:func:`prepare` off the event loop, in the bounded pool (:func:`in_image_pool`)."""
    return await in_image_pool(prepare, data, declared_type, limits)


async def in_image_pool(work: Callable[..., T], *args: Any) -> T:
    """CPU work on an image (re-encoding, decoding a barcode) off the event loop, in the
    bounded pool of :data:`PREPARE_THREADS` (``asyncio.to_thread`` would allow as many at
    once as the default executor has threads, each holding a decoded photo)."""
    global _in_pool, _giving_back
    loop = asyncio.get_running_loop()
    _in_pool += 1
    try:
        return await loop.run_in_executor(_PREPARING, work, *args)
    finally:
        _in_pool -= 1
        idle = _giving_back is None or _giving_back.done() or _giving_back.get_loop() is not loop
        if _in_pool == 0 and idle:
            _giving_back = loop.create_task(_give_back())


async def _give_back() -> None:
    """Once no image has been prepared for a while, free Pillow's spare blocks a couple at a
    time (freeing all at once holds the GIL ~15 ms); a new upload stops it where it is."""
    await asyncio.sleep(_GIVE_BACK_AFTER)
    try:
        for keep in range(_CACHED_BLOCKS - 2, -1, -2):
            if _in_pool:
                return
            Image.core.set_blocks_max(keep)  # frees the cached blocks above ``keep``
            await asyncio.sleep(0)
    finally:
        Image.core.set_blocks_max(_CACHED_BLOCKS)


def _too_many_pixels(limits: ImageLimits) -> ImageRefused:
    return ImageRefused("too_many_pixels", f"An image may have at most {limits.max_pixels} pixels.")


def _check_pixels(image: Image.Image, limits: ImageLimits) -> None:
    """From the header alone: nothing has been decoded yet."""
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageRefused("undecodable", "The image has no pixels.")
    if width * height > limits.max_pixels:
        raise _too_many_pixels(limits)


def _redraw(image: Image.Image, limits: ImageLimits) -> Image.Image:
    """The upright sRGB pixels, at most ``max_edge`` on the longest side: ``image`` itself when
    it is all that already (no copy: a 12 MP photo is 48 MB decoded), else a new image."""
    if image.format == "JPEG" and max(image.size) > limits.max_edge:
        # libjpeg decodes at 1/2, 1/4 or 1/8 scale directly, never below the size asked for
        image.draft(None, _fit(image.size, limits.max_edge))
    image.load()
    orientation = _orientation(image)
    pixels = _to_srgb(image)
    if max(pixels.size) > limits.max_edge:
        pixels = pixels.resize(
            _fit(pixels.size, limits.max_edge), Image.Resampling.LANCZOS, reducing_gap=3.0
        )
    if orientation in _UPRIGHT:
        pixels = pixels.transpose(_UPRIGHT[orientation])
    pixels.info = {}  # nothing of the upload's metadata reaches the encoder
    return pixels


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation; 1 (as stored) when there is none or the EXIF cannot be read."""
    try:
        value = image.getexif().get(_ORIENTATION, 1)
        return value if isinstance(value, int) else 1
    except (UserWarning, SyntaxError, ValueError, TypeError, KeyError, IndexError, OSError):
        return 1  # a phone's EXIF is not worth refusing its photo for


def _fit(size: tuple[int, int], edge: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, edge / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _to_srgb(image: Image.Image) -> Image.Image:
    """RGB, RGBA (only when the image is transparent) or L, in sRGB: an embedded profile is
    applied and then dropped (one that cannot be applied is dropped as it is)."""
    target = "RGBA" if _has_alpha(image) else "L" if image.mode in ("1", "L") else "RGB"
    profile = image.info.get("icc_profile")
    if profile and target != "L" and image.mode in ("RGB", "RGBA", "CMYK"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=target)
        except (ImageCms.PyCMSError, OSError, ValueError):
            converted = None
        if converted is not None:
            return converted
    if image.mode == target and "transparency" not in image.info:
        return image
    return image.convert(target)


def _encode(image: Image.Image, media_type: str) -> bytes:
    out = io.BytesIO()
    if media_type == PNG:
        image.save(out, "PNG")
        return out.getvalue()
    if image.mode == "RGBA":  # JPEG has no transparency: flatten onto white, as paper
        flat = Image.new("RGB", image.size, _WHITE)
        flat.paste(image, mask=image.getchannel("A"))
        image = flat
    image.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


# --- the vault -----------------------------------------------------------------------------------

MARKER = b"TPHIMG"
HEADER = MARKER + bytes([1])
KEY_FILE = "fill-images.key"
SUFFIX = ".img.enc"
#: Tink's ciphertext segment (the whole image is in memory anyway; this is Tink's granularity)
SEGMENT_SIZE = 64 * 1024
#: a stored file larger than this is not read (no stored image comes near it)
MAX_STORED_BYTES = 256 * MIB
_KEY_INFO = b"telepharm fill images: AES-GCM-HKDF streaming key, format 1"


class ImageNotFound(Exception):
    """No such image for that pharmacy and fill: absent, or (:class:`ImageCorrupt`) present but
    failing authentication; both are a 404 to a client."""


class ImageCorrupt(ImageNotFound):
    """A stored image failed authentication: changed, cut short, or from another record."""


class ImageExists(Exception):
    """An image with that id is already stored (images are never overwritten)."""


class ImageVault:
    """Prepared images under ``root``, encrypted with ``key`` (the 32 bytes of the key file).
    The async methods do their file work in a thread; the others are blocking."""

    def __init__(self, root: Path, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the image vault needs a 32-byte key")
        self._root = root
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO)
        self._aead = tink_streaming_aead(hkdf.derive(key), SEGMENT_SIZE)

    async def put(
        self,
        pharmacy_id: uuid.UUID,
        fill_id: uuid.UUID,
        image_id: uuid.UUID,
        prepared: PreparedImage,
    ) -> None:
        await asyncio.to_thread(self.put_sync, pharmacy_id, fill_id, image_id, prepared.data)

    async def get(self, pharmacy_id: uuid.UUID, fill_id: uuid.UUID, image_id: uuid.UUID) -> bytes:
        return await asyncio.to_thread(self.get_sync, pharmacy_id, fill_id, image_id)

    async def delete(self, pharmacy_id: uuid.UUID, fill_id: uuid.UUID, image_id: uuid.UUID) -> None:
        await asyncio.to_thread(self.delete_sync, pharmacy_id, fill_id, image_id)

    def path(self, pharmacy_id: uuid.UUID, fill_id: uuid.UUID, image_id: uuid.UUID) -> Path:
        """Where the image is kept: UUIDs only (``str(uuid.UUID)`` cannot hold a separator)."""
        ids = (uuid.UUID(str(pharmacy_id)), uuid.UUID(str(fill_id)), uuid.UUID(str(image_id)))
        return self._root / str(ids[0]) / str(ids[1]) / f"{ids[2]}{SUFFIX}"

    def put_sync(
        self, pharmacy_id: uuid.UUID, fill_id: uuid.UUID, image_id: uuid.UUID, data: bytes
    ) -> None:
        """Encrypt to a temporary file beside the final one, sync it, then link it in place: a
        reader sees the whole image or none, and a crash leaves at most a stray temporary."""
        final = self.path(pharmacy_id, fill_id, image_id)
        # the folders whose entries change: the fill's, and when it is new its parents' too
        folders = [final.parent] if final.parent.is_dir() else [*final.parents][:3]
        final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = final.with_name(f".{image_id}.{uuid.uuid4().hex}.tmp")
        sink = _SyncedFile(temporary)
        try:
            sink.write(HEADER)
            with self._aead.new_encrypting_stream(sink, _aad(pharmacy_id, fill_id, image_id)) as s:
                s.write(data)
            os.link(temporary, final)  # unlike a rename, never replaces a stored image
        except FileExistsError:
            raise ImageExists("an image with that id is already stored") from None
        finally:
            sink.close()
            temporary.unlink(missing_ok=True)
        for folder in folders:
            _sync_folder(folder)

    def get_sync(self, pharmacy_id: uuid.UUID, fill_id: uuid.UUID, image_id: uuid.UUID) -> bytes:
        path = self.path(pharmacy_id, fill_id, image_id)
        try:
            with path.open("rb") as file:
                if os.fstat(file.fileno()).st_size > MAX_STORED_BYTES:
                    raise ImageCorrupt("the stored image is impossibly large")
                stored = file.read()
        except FileNotFoundError:
            raise ImageNotFound("no such image") from None
        if not stored.startswith(HEADER):
            raise ImageCorrupt("not a stored image in a known format and version")
        ciphertext = io.BytesIO(memoryview(stored)[len(HEADER) :])
        try:
            stream = self._aead.new_decrypting_stream(
                ciphertext, _aad(pharmacy_id, fill_id, image_id)
            )
            with stream:
                return stream.read()
        except tink.TinkError:
            raise ImageCorrupt(
                "the stored image failed authentication (changed, cut short, or moved)"
            ) from None

    def delete_sync(self, pharmacy_id: uuid.UUID, fill_id: uuid.UUID, image_id: uuid.UUID) -> None:
        """Remove the image if it is there (deleting twice is not an error)."""
        path = self.path(pharmacy_id, fill_id, image_id)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        _sync_folder(path.parent)


def image_vault(settings: Settings) -> ImageVault:
    """The hub's vault, under ``<data dir>/fill-images`` with ``keys/fill-images.key`` (made on
    first use). Blocking (it may create the key): call it in a thread at start-up."""
    return ImageVault(settings.data_dir / "fill-images", load_key(settings.keys_dir / KEY_FILE))


def _aad(pharmacy_id: uuid.UUID, fill_id: uuid.UUID, image_id: uuid.UUID) -> bytes:
    ids = (pharmacy_id, fill_id, image_id)
    return HEADER + b"".join(uuid.UUID(str(value)).bytes for value in ids)


class _SyncedFile(io.RawIOBase):
    """A new file (never an existing one) under Tink's stream, synced to disk when closed."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        return len(data)

    def close(self) -> None:
        if self.closed:
            return
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
            super().close()


def _sync_folder(folder: Path) -> None:
    """Make a link or unlink in ``folder`` durable (the file's own sync does not cover it)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
