"""Finding product barcodes in a photo from a phone or tablet (issue 16, "Fill").

The photo is untrusted: only JPEG, PNG and WebP are opened, and the pixel count is checked from
the header before anything is decoded, so a small file that claims a huge image is refused
without the memory it would take. Decoding is CPU-bound and holds no shared state: callers run
it in a thread (``asyncio.to_thread``).

The texts returned are what :func:`eprescribe.dispensing.barcodes.parse_scan` reads. A GS1 code
(DataMatrix or GS1-128) is returned as its symbology identifier and element string with ASCII 29
between fields, from the symbol's raw bytes: the human-readable text zxing-cpp gives by default
puts the AIs in parentheses, which a lot number may itself contain.
"""

from __future__ import annotations

import io
from typing import Final

import zxingcpp
from PIL import Image

__all__ = ["MAX_PIXELS", "ImageTooLarge", "PhotoError", "UnreadableImage", "decode_image"]

#: the largest photo decoded: a 48-megapixel phone camera at full resolution fits
MAX_PIXELS: Final = 40_000_000
_FORMATS: Final = ("JPEG", "PNG", "WEBP")
_SYMBOLOGIES: Final = zxingcpp.BarcodeFormats(
    [
        zxingcpp.BarcodeFormat.DataMatrix,
        zxingcpp.BarcodeFormat.UPCA,
        zxingcpp.BarcodeFormat.EAN13,
        zxingcpp.BarcodeFormat.Code128,
    ]
)

# Pillow registers its format plugins lazily on the first open; doing it here keeps two
# threads' first opens from racing over the registry.
Image.init()


class PhotoError(ValueError):
    """A photo that cannot be decoded; ``reason`` is shown to the technician as is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ImageTooLarge(PhotoError):
    """More pixels than :data:`MAX_PIXELS` (possibly a decompression bomb)."""


class UnreadableImage(PhotoError):
    """Not a JPEG, PNG or WebP image, or a damaged one."""


def decode_image(data: bytes, *, max_pixels: int = MAX_PIXELS) -> list[str]:
    """The barcodes (GS1 DataMatrix, UPC-A, EAN-13, Code 128, GS1-128) found in the photo, as
    scanner text, each once; empty when there is none."""
    image = _grayscale(data, max_pixels)
    found = zxingcpp.read_barcodes(image, formats=_SYMBOLOGIES)
    return list(dict.fromkeys(_scanner_text(barcode) for barcode in found))


def _grayscale(data: bytes, max_pixels: int) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # the warning is raised when warnings are errors; otherwise the check below refuses
        raise ImageTooLarge(
            "The photo is too large: take it again at a lower resolution."
        ) from None
    except (OSError, SyntaxError, ValueError):
        raise UnreadableImage("The file is not a JPEG, PNG or WebP photo.") from None
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise ImageTooLarge("The photo is too large: take it again at a lower resolution.")
        try:
            # a JPEG decodes straight to grayscale, a third of the memory of colour
            image.draft("L", image.size)
            return _flatten(image)
        except (OSError, SyntaxError, ValueError):
            raise UnreadableImage("The photo is damaged and cannot be read.") from None


def _flatten(image: Image.Image) -> Image.Image:
    """Grayscale, with transparency on white (a transparent background would turn black):
    gray and alpha ("LA", two bytes a pixel) pasted on a white gray canvas, never full-colour
    copies (four of them made a 7000 x 7000 PNG cost 600 MB)."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        gray_alpha = image.convert("LA")
        canvas = Image.new("L", gray_alpha.size, 255)
        canvas.paste(gray_alpha.getchannel("L"), mask=gray_alpha.getchannel("A"))
        return canvas
    return image.convert("L")


def _scanner_text(barcode: zxingcpp.Barcode) -> str:
    if barcode.content_type == zxingcpp.ContentType.GS1:
        return barcode.symbology_identifier + barcode.bytes.decode("ascii", "replace")
    return barcode.text
