"""Barcodes generated here, photographed (rotated, scaled, JPEG-compressed) and read back."""

import datetime as dt
import io
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import zxingcpp
from PIL import Image

from eprescribe.dispensing.barcodes import gs1_check_digit, parse_scan, rx_barcode_text
from server.dispensing.decode import ImageTooLarge, UnreadableImage, decode_image

NDC10 = "6050512345"
UPC_BODY = "3" + NDC10
GTIN_BODY = "003" + NDC10
GTIN = GTIN_BODY + str(gs1_check_digit(GTIN_BODY))


def _symbol(content: str, format: zxingcpp.BarcodeFormat, *, gs1: bool = False) -> Image.Image:
    barcode = zxingcpp.create_barcode(content, format, gs1=gs1)
    bitmap = zxingcpp.write_barcode_to_image(barcode, scale=4)
    height, width = bitmap.shape
    return Image.frombytes("L", (width, height), bytes(memoryview(bitmap)))


def _photo(symbol: Image.Image, *, angle: float, scale: float) -> Image.Image:
    """The symbol on a larger grey card, turned and resized as a hand-held phone would."""
    card = Image.new("RGB", (symbol.width * 2, symbol.height * 2), (200, 196, 190))
    card.paste(symbol.convert("RGB"), (symbol.width // 2, symbol.height // 2))
    turned = card.rotate(
        angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(90, 90, 90)
    )
    size = (round(turned.width * scale), round(turned.height * scale))
    return turned.resize(size, Image.Resampling.BILINEAR)


def _encoded(image: Image.Image, format: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=format, **({"quality": 70} if format in ("JPEG", "WEBP") else {}))
    return out.getvalue()


UPC_A = _symbol(UPC_BODY, zxingcpp.BarcodeFormat.UPCA)
DSCSA = _symbol(
    f"(01){GTIN}(17)290600(10)A\\(21\\)5(21)SN0042x",  # parentheses escaped for the encoder
    zxingcpp.BarcodeFormat.DataMatrix,
    gs1=True,
)
RX_LABEL = _symbol(rx_barcode_text("0001234"), zxingcpp.BarcodeFormat.Code128)
SHOTS = [("PNG", 0, 1.0), ("JPEG", 0, 1.0), ("JPEG", 8, 0.75), ("WEBP", -6, 1.5), ("JPEG", 90, 1.2)]


@pytest.mark.parametrize(("format", "angle", "scale"), SHOTS)
def test_upc_a(format: str, angle: float, scale: float) -> None:
    texts = decode_image(_encoded(_photo(UPC_A, angle=angle, scale=scale), format))
    assert [parse_scan(text).ndc10 for text in texts] == [NDC10]


@pytest.mark.parametrize(("format", "angle", "scale"), SHOTS)
def test_gs1_datamatrix(format: str, angle: float, scale: float) -> None:
    [text] = decode_image(_encoded(_photo(DSCSA, angle=angle, scale=scale), format))
    scan = parse_scan(text)
    assert (scan.kind, scan.gtin, scan.ndc10) == ("gs1", GTIN, NDC10)
    # the lot looks like an AI in parentheses: only the raw element string keeps it whole
    assert (scan.lot, scan.serial, scan.expiry) == ("A(21)5", "SN0042x", dt.date(2029, 6, 30))


def test_gs1_text_keeps_the_separator() -> None:
    [text] = decode_image(_encoded(DSCSA, "PNG"))
    assert text == f"]d201{GTIN}17290600" + "10A(21)5\x1d21SN0042x"


@pytest.mark.parametrize(("format", "angle", "scale"), SHOTS)
def test_rx_label(format: str, angle: float, scale: float) -> None:
    texts = decode_image(_encoded(_photo(RX_LABEL, angle=angle, scale=scale), format))
    assert [parse_scan(text).rx_number for text in texts] == ["0001234"]


def test_several_codes_in_one_photo() -> None:
    sheet = Image.new("L", (UPC_A.width + DSCSA.width + 40, max(UPC_A.height, DSCSA.height)), 255)
    sheet.paste(UPC_A, (0, 0))
    sheet.paste(DSCSA, (UPC_A.width + 40, 0))
    kinds = sorted(parse_scan(text).kind for text in decode_image(_encoded(sheet, "PNG")))
    assert kinds == ["gs1", "upc"]


def test_transparent_background_reads_as_white() -> None:
    symbol = DSCSA.convert("LA")
    symbol.putalpha(DSCSA.point(lambda v: 255 - v))  # black modules opaque, the rest clear
    assert len(decode_image(_encoded(symbol, "PNG"))) == 1


def test_photo_without_a_barcode() -> None:
    gradient = Image.linear_gradient("L").resize((640, 480)).convert("RGB")
    assert decode_image(_encoded(gradient, "JPEG")) == []


def test_concurrent_decoding_in_threads() -> None:
    photos = [_encoded(_photo(s, angle=5, scale=1.0), "JPEG") for s in (UPC_A, DSCSA, RX_LABEL)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(decode_image, photos * 4))
    assert results == [decode_image(photo) for photo in photos] * 4


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels: a few bytes, and a bomb if decoded."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


@pytest.mark.parametrize(("width", "height"), [(8_000, 8_000), (40_000, 40_000)])
def test_decompression_bomb_is_refused_from_the_header(width: int, height: int) -> None:
    with pytest.raises(ImageTooLarge) as caught:
        decode_image(_png_header(width, height))
    assert "too large" in caught.value.reason


def test_pixel_bound_is_configurable() -> None:
    with pytest.raises(ImageTooLarge):
        decode_image(_encoded(UPC_A, "PNG"), max_pixels=UPC_A.width * UPC_A.height - 1)
    assert decode_image(_encoded(UPC_A, "PNG"), max_pixels=UPC_A.width * UPC_A.height)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image",
        _encoded(UPC_A, "GIF"),  # a format not accepted
        _encoded(UPC_A, "JPEG")[:400],  # cut short in the middle of the scan
    ],
)
def test_unreadable_files(data: bytes) -> None:
    with pytest.raises(UnreadableImage):
        decode_image(data)
