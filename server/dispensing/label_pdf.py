"""The prescription label as a PDF, printed from the browser onto vial label stock.

The page is one label of a common pharmacy vial label size, 4 x 2.5 in (4 x 6 in for the
large-print variant). It prints ``label_lines`` and nothing else, each logical line at the
largest size that lets the whole label fit, wrapped at word boundaries when still too long,
and continued on a further label when even the smallest size cannot hold it: text is never
cut. A Code 128 barcode of ``rx_barcode_text`` sits at the foot of the first label, so the fill
screen's scan field takes the label back.

Text is set in DejaVu Sans when the system has it (Debian ``fonts-dejavu-core``), for patients'
names outside Latin-1, else in the Bitstream Vera that reportlab ships. Output is deterministic
(``invariant=1`` fixes the timestamp and document id) and nothing is logged: the label is
patient data.
"""

from __future__ import annotations

import dataclasses
import functools
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib.units import inch
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from eprescribe.dispensing.labels import LabelContent, LabelField, label_fields, rx_barcode_text

__all__ = ["LabelStyle", "label_style", "render_label", "wrap"]

_DEJAVU: Final = Path("/usr/share/fonts/truetype/dejavu")
_REGULAR: Final = "LabelSans"
_BOLD: Final = "LabelSans-Bold"


@dataclasses.dataclass(frozen=True, slots=True)
class LabelStyle:
    """Page size, margins, the range of body sizes tried (points) and the barcode's size."""

    width: float
    height: float
    margin: float
    max_size: float
    min_size: float
    bar_height: float
    bar_width: float
    min_bar_width: float

    @property
    def text_width(self) -> float:
        return self.width - 2 * self.margin


#: 4 x 2.5 in vial label; 6 pt is about the smallest a label printer renders legibly.
STANDARD: Final = LabelStyle(
    width=4 * inch,
    height=2.5 * inch,
    margin=inch / 8,
    max_size=9,
    min_size=6,
    bar_height=0.25 * inch,
    bar_width=1.0,
    min_bar_width=0.6,
)
#: 4 x 6 in; large print means at least 14 pt body text (18 pt when it fits).
LARGE_PRINT: Final = LabelStyle(
    width=4 * inch,
    height=6 * inch,
    margin=inch / 8,
    max_size=18,
    min_size=14,
    bar_height=0.4 * inch,
    bar_width=1.2,
    min_bar_width=0.6,
)

_LEADING: Final = 1.15
_STEP: Final = 0.5
_GAP: Final = 4.0  # between the text and the barcode


def label_style(content: LabelContent) -> LabelStyle:
    return LARGE_PRINT if content.large_print else STANDARD


@dataclasses.dataclass(frozen=True, slots=True)
class _Line:
    """One printed line: its text, font and size."""

    text: str
    font: str
    size: float

    @property
    def leading(self) -> float:
        return self.size * _LEADING


def render_label(content: LabelContent) -> bytes:
    """The label as PDF bytes: every line of ``label_lines(content)``, in order, whole."""
    style = label_style(content)
    regular, bold = _fonts()
    barcode = _barcode(rx_barcode_text(content.rx_number), style)
    first_height = style.height - 2 * style.margin - barcode.height - _GAP
    pages = _paginate(_layout(content, style, regular, bold, first_height), style, first_height)
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=(style.width, style.height), invariant=1)
    canvas.setTitle("Prescription label")
    for number, page in enumerate(pages):
        y = style.height - style.margin
        for line in page:
            y -= line.size
            canvas.setFont(line.font, line.size)
            canvas.drawString(style.margin, y, line.text)
            y -= line.leading - line.size
        if number == 0:
            barcode.drawOn(canvas, (style.width - barcode.width) / 2, style.margin)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """``text`` in lines no wider than ``width``, broken between words; a single word wider
    than the line is broken between characters rather than cut."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if pdfmetrics.stringWidth(candidate, font, size) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        pieces = list(_split_word(word, font, size, width))
        lines.extend(pieces[:-1])
        current = pieces[-1]
    if current:
        lines.append(current)
    return lines


def _split_word(word: str, font: str, size: float, width: float) -> Iterator[str]:
    piece = ""
    for char in word:
        if piece and pdfmetrics.stringWidth(piece + char, font, size) > width:
            yield piece
            piece = ""
        piece += char
    yield piece


# Set apart as on any vial label: who it is for and how to take it, larger; the pharmacy's
# name and the legal cautions in bold.
_EMPHASIS: Final[dict[LabelField, tuple[bool, float]]] = {
    "pharmacy": (True, 1.0),
    "patient": (True, 1.2),
    "directions": (True, 1.2),
    "caution": (True, 1.0),
}


def _layout(
    content: LabelContent, style: LabelStyle, regular: str, bold: str, first_height: float
) -> list[list[_Line]]:
    """Each logical line as its printed lines, at the largest body size that fits the first
    label, else at the smallest."""
    roles = [(text, *_EMPHASIS.get(field, (False, 1.0))) for field, text in label_fields(content)]
    size = style.max_size
    while True:
        groups = [
            [
                _Line(part, bold if heavy else regular, size * scale)
                for part in wrap(text, bold if heavy else regular, size * scale, style.text_width)
            ]
            for text, heavy, scale in roles
        ]
        if _height(line for group in groups for line in group) <= first_height:
            return groups
        if size <= style.min_size:
            return groups
        size = max(style.min_size, size - _STEP)


def _paginate(
    groups: list[list[_Line]], style: LabelStyle, first_height: float
) -> list[list[_Line]]:
    """Logical lines spread over labels, the first leaving room for the barcode. A logical
    line moves whole to the next label when it fits there, so a caution is not read in
    halves; only one longer than a whole label is split."""
    full = style.height - 2 * style.margin
    pages: list[list[_Line]] = [[]]
    room = first_height
    for group in groups:
        if _height(group) > room and pages[-1] and _height(group) <= full:
            pages.append([])
            room = full
        for line in group:
            if line.leading > room and pages[-1]:
                pages.append([])
                room = full
            pages[-1].append(line)
            room -= line.leading
    return pages


def _height(lines: Iterable[_Line]) -> float:
    return sum(line.leading for line in lines)


def _barcode(text: str, style: LabelStyle) -> Code128:
    """Code 128 of ``text``, its module width narrowed (not below the minimum) until it fits
    across the label with its quiet zones (which may reach into the margins: they are blank)."""
    bar_width = style.bar_width
    while True:
        barcode = Code128(text, barWidth=bar_width, barHeight=style.bar_height, humanReadable=0)
        fits = barcode.width <= style.width
        if fits or bar_width <= style.min_bar_width:
            return barcode
        bar_width = max(style.min_bar_width, bar_width - 0.1)


@functools.cache
def _fonts() -> tuple[str, str]:
    """Register the label's regular and bold fonts once (reportlab's registry is global)."""
    regular, bold = _DEJAVU / "DejaVuSans.ttf", _DEJAVU / "DejaVuSans-Bold.ttf"
    if not (regular.is_file() and bold.is_file()):
        regular, bold = Path("Vera.ttf"), Path("VeraBd.ttf")  # reportlab's own, on its path
    pdfmetrics.registerFont(TTFont(_REGULAR, str(regular)))
    pdfmetrics.registerFont(TTFont(_BOLD, str(bold)))
    return _REGULAR, _BOLD
