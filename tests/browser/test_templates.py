"""Issue 17's notification templates in the console: a pharmacy admin opens the Spanish
"ready for pick-up" template, edits its text message while the preview (synthetic values)
follows, is refused a text naming the patient in the hub's words, saves, resets to the default;
and switches the drug-name setting on and off."""

from __future__ import annotations

import uuid

from playwright.sync_api import Browser, expect

from eprescribe.notifications import DEFAULT_TEMPLATES, EventKind

from .a11y import assert_accessible
from .conftest import DESKTOP, DemoHub, Shots, sign_in, watch
from .test_dispensing import add_staff

OWN_SMS = "$pharmacy_name: su receta le espera hasta el $pickup_by. Responda STOP para salir."


def test_an_admin_edits_previews_saves_and_resets_the_spanish_pickup_text(
    demo_hub: DemoHub, chromium: Browser, shots: Shots
) -> None:
    admin = add_staff(demo_hub, f"admin.{uuid.uuid4().hex[:6]}", "pharmacy_admin")
    problems: list[str] = []
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch(page, problems)
    sign_in(page, demo_hub, account=admin)
    page.get_by_role("link", name="Templates", exact=True).click()
    spanish = (
        page.get_by_role("table", name="Templates")
        .locator("tr[data-kind='ready_for_pickup']")
        .locator("td[data-language='es']")
    )
    expect(spanish).to_contain_text("Default")
    shots.take(page, "01-templates")
    assert_accessible(page, "#/templates")

    spanish.get_by_role("link").click()
    sms = page.get_by_label("Text message (SMS)")
    default = DEFAULT_TEMPLATES[(EventKind.READY_FOR_PICKUP, "es")].sms
    expect(sms).to_have_value(default)
    preview = page.locator("#preview-sms")
    expect(preview).to_contain_text("Farmacia Comunitaria Calle Mayor: su receta está lista")
    expect(page.locator("#preview-length")).to_contain_text("UCS-2")  # "está"

    sms.fill(OWN_SMS)
    expect(preview).to_have_text(
        "Farmacia Comunitaria Calle Mayor: su receta le espera hasta el 30 de septiembre. "
        "Responda STOP para salir."
    )
    expect(page.locator("#preview-length")).to_contain_text("GSM-7 · 1 segment")
    shots.take(page, "02-preview")
    assert_accessible(page, "#/templates/<kind>/<lang>, previewed")

    # the patient's name in a text: refused, in the hub's words, in the preview and on save
    sms.fill("$pharmacy_name: $first_name, su receta le espera.")
    expect(page.locator("#preview-problem")).to_contain_text("minimum necessary")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".form-message .notice.error")).to_contain_text("minimum necessary")
    shots.take(page, "03-refused")
    assert_accessible(page, "#/templates/<kind>/<lang>, refused")

    sms.fill(OWN_SMS)
    expect(preview).to_contain_text("le espera hasta el 30 de septiembre")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".form-message .notice.ok")).to_have_text("Saved: version 1.")
    expect(page.locator("#tpl-status")).to_contain_text("The pharmacy's own, version 1")
    shots.take(page, "04-saved")

    page.get_by_role("link", name="← All templates").click()
    expect(spanish).to_contain_text("Own (version 1)")
    spanish.get_by_role("link").click()
    expect(sms).to_have_value(OWN_SMS)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Reset to default").click()
    expect(page.locator(".form-message .notice.ok")).to_have_text("Reset to the default.")
    expect(sms).to_have_value(default)
    expect(page.locator("#tpl-status")).to_have_text("The hub's default.")
    shots.take(page, "05-reset")

    # the drug-name setting, on and off again
    page.get_by_role("link", name="← All templates").click()
    setting = page.get_by_label("Allow drug names in texts and email subjects")
    expect(setting).not_to_be_checked()
    setting.check()
    expect(page.locator(".setting .notice.ok")).to_contain_text("may now show")
    setting.uncheck()
    expect(page.locator(".setting .notice.ok")).to_contain_text("no longer show")
    shots.take(page, "06-setting")
    context.close()
    assert problems == []
