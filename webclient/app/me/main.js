// The patient's own page, /me/{pharmacy}: no password. The patient types the email or mobile
// number they gave the pharmacy, gets a one-time code there, and signs in for a short
// session. Then: their prescriptions in plain words, asking for a refill, what they owe and
// paying it (./payments.js), how they are told (email and text messages on or off), pick-up
// or delivery, and their open video consultation invitations. Nothing about a patient is shown before the code.

import { h, replace, announce, when } from "../lib/dom.js";
import { me, setCsrf, MeError } from "./api.js";
import { payments } from "./payments.js";

const view = document.getElementById("view");
const pharmacy = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");

function show(...content) {
  replace(view, ...content);
  view.focus({ preventScroll: true });
  const heading = view.querySelector("h1");
  if (heading) announce(heading.textContent);
}

function problem(error) {
  return h("p", { class: "notice error", role: "alert" }, error.message);
}

function field(id, label, props, hint) {
  const input = h("input", { id, name: id, type: "text", ...props, "aria-describedby": hint ? `${id}-hint` : null });
  return [h("label", { for: id }, label), hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null, input];
}

// -- sign-in -------------------------------------------------------------------------------

function askScreen(address = "", error = null) {
  const form = h("form", { novalidate: true },
    ...field("address", "Email or mobile number", { autocomplete: "email", inputmode: "email", value: address, required: true },
      "The one you gave your pharmacy. We send a 6-digit code there."),
    h("div", { class: "actions" }, h("button", { type: "submit", id: "send-code" }, "Send me a code")));
  const status = h("div", { "aria-live": "polite" }, error ? problem(error) : null);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const typed = form.address.value.trim();
    if (!typed) {
      replace(status, problem(new Error("Type your email or mobile number.")));
      form.address.focus();
      return;
    }
    form.querySelector("button").disabled = true;
    try {
      const answer = await me("/sign-in/code", { method: "POST", body: { pharmacy, address: typed } });
      codeScreen(typed, answer.detail);
    } catch (err) {
      form.querySelector("button").disabled = false;
      replace(status, problem(err));
    }
  });
  show(h("section", { class: "card" },
    h("h1", {}, "Sign in to see your prescriptions"),
    h("p", {}, "No password needed: we send you a one-time code."),
    form, status));
  if (address) form.address.focus();
}

function codeScreen(address, sent) {
  const form = h("form", { novalidate: true },
    ...field("code", "Code", { inputmode: "numeric", autocomplete: "one-time-code", maxlength: "6", pattern: "[0-9]*", required: true },
      "6 digits, from the message we sent."),
    h("div", { class: "actions" },
      h("button", { type: "submit", id: "sign-in" }, "Sign in"),
      h("button", { type: "button", class: "secondary", onclick: () => askScreen(address) }, "Send a new code")));
  const status = h("div", { "aria-live": "polite" });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const code = form.code.value.replace(/\s+/g, "");
    if (!/^\d{6}$/.test(code)) {
      replace(status, problem(new Error("The code is 6 digits.")));
      form.code.focus();
      return;
    }
    form.querySelector("button").disabled = true;
    try {
      const session = await me("/sign-in", { method: "POST", body: { pharmacy, address, code } });
      setCsrf(session.csrf);
      await home();
    } catch (err) {
      form.querySelector("button").disabled = false;
      replace(status, problem(err));
      form.code.select();
    }
  });
  show(h("section", { class: "card" },
    h("h1", {}, "Type your code"),
    h("p", { class: "notice info", role: "status" }, sent),
    form, status));
  form.code.focus();
}

// -- signed in -----------------------------------------------------------------------------

const ASK = { refill: "Ask for a refill", renewal: "Ask your prescriber for a renewal" };
const ASKED = {
  refill: "You asked for a refill. The pharmacy will prepare it.",
  renewal: "You asked for a renewal. The pharmacy will ask your prescriber.",
};

async function home() {
  let who;
  try {
    who = await me("");
  } catch (err) {
    if (err instanceof MeError && err.status === 401) return askScreen();
    return show(h("section", { class: "card" }, h("h1", {}, "Something went wrong"), problem(err)));
  }
  setCsrf(who.csrf);
  const list = h("div", {}, h("p", { role: "status" }, "Loading your prescriptions…"));
  const settings = h("div", {});
  const invites = h("div", {});
  const bills = h("div", {}, h("p", { role: "status" }, "Loading your balance…"));
  show(
    h("div", { class: "page-head" },
      h("h1", {}, `Hello, ${who.first_name}`),
      h("span", { class: "spacer" }),
      h("button", { type: "button", class: "secondary", id: "sign-out", onclick: signOut }, "Sign out")),
    h("p", {}, who.pharmacy, who.pharmacy_phone ? ` · ${who.pharmacy_phone}` : ""),
    h("section", { class: "card", "aria-labelledby": "rx-head" }, h("h2", { id: "rx-head" }, "Your prescriptions"), list),
    h("section", { class: "card", id: "payments", "aria-labelledby": "pay-head" }, h("h2", { id: "pay-head" }, "Payments"), bills),
    h("section", { class: "card", "aria-labelledby": "contact-head" }, h("h2", { id: "contact-head" }, "How we contact you"), settings),
    h("section", { class: "card", "aria-labelledby": "consult-head" }, h("h2", { id: "consult-head" }, "Video consultations"), invites));
  await Promise.all([prescriptions(list), guarded(bills, () => payments(bills)), preferences(settings), consults(invites)]);
}

async function signOut() {
  try { await me("/sign-out", { method: "POST" }); } catch { /* the session is gone either way */ }
  setCsrf("");
  askScreen();
  announce("You are signed out.");
}

async function guarded(el, load) {
  try {
    await load();
  } catch (err) {
    if (err instanceof MeError && err.status === 401) return askScreen("", new Error("Your session ended. Sign in again."));
    replace(el, problem(err));
  }
}

function prescriptions(el) {
  return guarded(el, async () => {
    const { items } = await me("/prescriptions");
    if (!items.length) return replace(el, h("p", {}, "No prescriptions yet."));
    replace(el, h("ul", { class: "me-list" }, items.map((rx) => prescriptionItem(rx, el))));
  });
}

function prescriptionItem(rx, listEl) {
  const status = h("div", { "aria-live": "polite" });
  const asked = rx.request && rx.request.state === "open" ? h("p", { class: "notice ok" }, ASKED[rx.request.kind]) : null;
  const button = rx.can_ask
    ? h("button", { type: "button", class: "secondary", onclick: async (event) => {
        event.currentTarget.disabled = true;
        try {
          await me(`/prescriptions/${rx.id}/refill`, { method: "POST" });
          announce(ASKED[rx.can_ask]);
          await prescriptions(listEl);
          listEl.querySelector("h3")?.focus?.();
        } catch (err) {
          event.currentTarget.disabled = false;
          replace(status, problem(err));
        }
      } }, ASK[rx.can_ask])
    : null;
  return h("li", { class: "me-rx" },
    h("h3", { tabindex: "-1" }, rx.drug),
    h("p", {}, h("span", { class: `badge me-status ${rx.status}` }, rx.status_text),
      rx.rx_number ? h("span", { class: "hint" }, ` Rx ${rx.rx_number}`) : null),
    asked, button ? h("div", { class: "actions" }, button) : null, status);
}

function preferences(el) {
  return guarded(el, async () => {
    const prefs = await me("/preferences");
    const status = h("div", { "aria-live": "polite" });
    const kinds = Object.keys(prefs.consent);
    const channelOn = (channel) => kinds.some((k) => prefs.consent[k][channel]);
    const has = (kind) => prefs.contacts.some((c) => c.kind === kind && c.verified && !c.opted_out);
    const toggle = (channel, id, label, hint) => {
      const box = h("input", { type: "checkbox", id, checked: channelOn(channel) });
      box.addEventListener("change", async () => {
        box.disabled = true;
        try {
          const switches = kinds.map((kind) => ({ kind, channel, allowed: box.checked }));
          await me("/consent", { method: "PUT", body: { switches } });
          replace(status, h("p", { class: "notice ok", role: "status" }, `${label} ${box.checked ? "on" : "off"}. Saved.`));
        } catch (err) {
          box.checked = !box.checked;
          replace(status, problem(err));
        } finally {
          box.disabled = false;
        }
      });
      return h("div", { class: "me-switch" }, box, h("label", { for: id, class: "inline" }, label), hint ? h("p", { class: "hint" }, hint) : null);
    };
    const how = (value, label) => {
      const radio = h("input", { type: "radio", name: "pickup", id: `pickup-${value}`, value, checked: prefs.pickup_or_delivery === value });
      radio.addEventListener("change", async () => {
        try {
          await me("/preferences", { method: "PUT", body: { pickup_or_delivery: value } });
          replace(status, h("p", { class: "notice ok", role: "status" }, `${label}. Saved.`));
        } catch (err) {
          replace(status, problem(err));
        }
      });
      return h("div", { class: "me-switch" }, radio, h("label", { for: `pickup-${value}`, class: "inline" }, label));
    };
    replace(el,
      h("fieldset", { class: "plain" }, h("legend", {}, "Messages about your prescriptions"),
        toggle("email", "consent-email", "Email", has("email") ? null : "No verified email: ask your pharmacy to add one."),
        toggle("sms", "consent-sms", "Text messages (SMS)", has("mobile") ? null : "No verified mobile: ask your pharmacy to add one.")),
      h("fieldset", { class: "plain" }, h("legend", {}, "How you get your medicines"),
        how("pickup", "I pick up at the pharmacy"), how("delivery", "Deliver to me")),
      status);
  });
}

function consults(el) {
  return guarded(el, async () => {
    const { items } = await me("/consults");
    if (!items.length) return replace(el, h("p", {}, "No video consultation planned."));
    replace(el, h("ul", { class: "me-list" }, items.map((c) => h("li", {},
      h("p", {}, `A pharmacist invited you to a video consultation. The invitation is open until ${when(c.expires_at)}.`),
      c.url
        ? h("p", {}, h("a", { href: c.url, class: "button" }, "Join the video consultation"))
        : h("p", { class: "hint" }, "Open it from the link in the message your pharmacy sent you. Lost it? Call your pharmacy for a new one.")))));
  });
}

home();
