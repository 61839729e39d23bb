"""The label PDF: every line of the canonical text printed whole, read back from the rendered
page with poppler, and the barcode decoding back to the Rx number."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from reportlab.pdfbase import pdfmetrics

from eprescribe.dispensing.barcodes import rx_barcode_text
from eprescribe.dispensing.labels import (
    FEDERAL_TRANSFER_CAUTION,
    LabelContent,
    label_lines,
)
from eprescribe.drugs import SCHEDULE_CODES
from server.dispensing.label_pdf import LARGE_PRINT, STANDARD, _fonts, render_label, wrap

LONG_SIG = (
    "Take 1 tablet by mouth every 4 to 6 hours as needed for moderate to severe pain. Do not "
    "take more than 6 tablets in 24 hours. Take with a full glass of water and do not drive "
    "until you know how this medicine affects you. Call your prescriber if pain is not relieved "
    "or if you notice shallow breathing, confusion or unusual sleepiness."
)
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
POPPLER = shutil.which("pdftoppm") and shutil.which("pdftotext")
needs_poppler = pytest.mark.skipif(
    not POPPLER, reason="pdftoppm/pdftotext not installed (apt-get install poppler-utils)"
)


def content(**changes: Any) -> LabelContent:
    base = LabelContent(
        pharmacy_name="Riverbend Community Pharmacy",
        pharmacy_address=("120 Main Street", "Riverbend, MT 59000"),
        pharmacy_phone="(406) 555-0142",
        rx_number="1000123",
        fill_date=dt.date(2026, 12, 6),
        fill_number=0,
        refills_left=0,
        patient_name="Jane Testpatient",
        drug_description="acetaminophen 325 MG / oxycodone hydrochloride 5 MG Oral Tablet",
        strength="325 mg/5 mg",
        ndc="12345-6789-01",
        manufacturer="Example Generics",
        quantity=Decimal(20),
        quantity_unit="tablets",
        directions="Take 1 tablet by mouth every 6 hours as needed for pain.",
        prescriber_name="Alan Example, MD",
        discard_after=dt.date(2027, 6, 30),
        dea_schedule=SCHEDULE_CODES["CII"],
        auxiliary_warnings=(
            "May cause drowsiness. Alcohol may intensify this effect. Use care when operating "
            "a car or dangerous machinery.",
            "Contains acetaminophen. Do not take with other products containing acetaminophen.",
        ),
    )
    return dataclasses.replace(base, **changes)


def words(text: str) -> str:
    return " ".join(text.split())


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "label.pdf"
    path.write_bytes(pdf)
    result = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    )
    return result.stdout


def assert_prints_every_line_in_order(label: LabelContent, text: str) -> None:
    """Each canonical line, wrapped or not, appears whole and after the one before it."""
    printed = words(text)
    position = 0
    for line in label_lines(label):
        found = printed.find(line, position)
        assert found >= 0, line
        position = found + len(line)


# --- wrapping ---


def test_a_long_sig_wraps_keeping_every_word_in_order() -> None:
    regular, _ = _fonts()
    lines = wrap(LONG_SIG, regular, 9, STANDARD.text_width)
    assert len(lines) > 3
    assert " ".join(lines).split() == LONG_SIG.split()
    assert max(pdfmetrics.stringWidth(line, regular, 9) for line in lines) <= STANDARD.text_width


def test_a_word_wider_than_the_label_is_broken_not_cut() -> None:
    regular, _ = _fonts()
    word = "X" * 80
    lines = wrap(f"Apply {word} daily", regular, 9, STANDARD.text_width)
    assert "".join(lines).replace(" ", "") == f"Apply{word}daily"
    assert max(pdfmetrics.stringWidth(line, regular, 9) for line in lines) <= STANDARD.text_width


# --- the PDF itself ---


def test_the_pdf_is_deterministic() -> None:
    first = render_label(content())
    assert first.startswith(b"%PDF-")
    assert render_label(content()) == first


def test_the_standard_label_is_4_by_2_5_inches_and_large_print_4_by_6() -> None:
    standard = render_label(content())
    large = render_label(content(large_print=True))
    assert STANDARD.width == LARGE_PRINT.width == 288
    assert (STANDARD.height, LARGE_PRINT.height) == (180, 432)
    assert re.search(rb"/MediaBox \[ 0 0 288 180 \]", standard)
    assert re.search(rb"/MediaBox \[ 0 0 288 432 \]", large)


def test_the_pdf_holds_no_patient_data_in_its_metadata() -> None:
    pdf = render_label(content())
    assert b"Testpatient" not in pdf.split(b"stream")[0]
    assert b"/Title (Prescription label)" in pdf


@needs_poppler
def test_every_line_of_the_label_text_is_printed(tmp_path: Path) -> None:
    label = content()
    text = pdf_text(render_label(label), tmp_path)
    assert_prints_every_line_in_order(label, text)
    assert text.count("\f") == 1  # a typical controlled-substance label fits one label
    assert words(FEDERAL_TRANSFER_CAUTION) in words(text)


@needs_poppler
def test_a_long_sig_is_wrapped_not_cut(tmp_path: Path) -> None:
    label = content(directions=LONG_SIG)
    text = pdf_text(render_label(label), tmp_path)
    assert_prints_every_line_in_order(label, text)
    assert LONG_SIG not in text  # it did not fit one printed line, so it was wrapped


@needs_poppler
def test_large_print_prints_every_line_over_as_many_labels_as_it_needs(tmp_path: Path) -> None:
    label = content(directions=LONG_SIG, large_print=True)
    text = pdf_text(render_label(label), tmp_path)
    assert_prints_every_line_in_order(label, text)
    assert text.count("\f") >= 2


@needs_poppler
@pytest.mark.skipif(not DEJAVU.is_file(), reason="DejaVu Sans not installed (fonts-dejavu-core)")
def test_names_outside_latin_1_print(tmp_path: Path) -> None:
    label = content(patient_name="Nguyễn Thị Đào")
    assert "Nguyễn Thị Đào" in pdf_text(render_label(label), tmp_path)


@pytest.fixture(scope="module")
def label_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not POPPLER:
        pytest.skip("pdftoppm not installed (apt-get install poppler-utils)")
    folder = tmp_path_factory.mktemp("label")
    (folder / "label.pdf").write_bytes(render_label(content()))
    subprocess.run(
        ["pdftoppm", "-r", "300", "-png", "-singlefile", "label.pdf", "label"],
        cwd=folder,
        check=True,
    )
    return folder / "label.png"


def test_the_label_renders_to_an_image(label_png: Path) -> None:
    assert label_png.read_bytes().startswith(b"\x89PNG")


def test_the_barcode_decodes_back_to_the_rx_number(label_png: Path) -> None:
    zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp not installed: cannot decode")
    image = pytest.importorskip("PIL.Image", reason="Pillow not installed: cannot read the PNG")
    found = zxingcpp.read_barcodes(image.open(label_png))
    assert [(b.format.name, b.text) for b in found] == [("Code128", rx_barcode_text("1000123"))]
