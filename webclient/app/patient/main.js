// The patient's consult page, opened from the invite link with no account: what this is,
// telehealth consent, a camera and microphone check, the waiting room, the call (recording
// only if they agree when asked), leaving. A dropped network reconnects by itself.

import { api } from "../lib/api.js";
import { ConsultCall } from "../lib/call.js";
import { videoStage, muteButtons } from "../lib/stage.js";
import { h, replace, announce } from "../lib/dom.js";
import { feePanel, clearFee } from "./fee.js";

const CONSENT_VERSION = "telehealth-2026-12";
const CONSENT_TEXT = [
  "This is a video consultation with a licensed pharmacist about your medicines. It takes place over a secure, encrypted connection.",
  "Video care has limits: the pharmacist cannot examine you in person, and may advise you to see a doctor or visit a pharmacy.",
  "The consultation is not recorded unless you and the pharmacist both agree during the call. You can say no, and you can stop a recording at any time.",
  "You may end the consultation at any time. In an emergency, call 911.",
];
const view = document.getElementById("view");
const invite = decodeURIComponent(location.pathname.split("/").pop() || "");
const RESUME_KEY = `telepharm.patient.${invite.slice(0, 16)}`;

const MESSAGES = {
  invite_expired: ["This invitation has expired", "Invitations work for a limited time. Please contact your pharmacy for a new link."],
  invite_used: ["This invitation was already used", "Each link works once. If you were disconnected, use the same browser tab you joined with, or ask your pharmacy for a new link."],
  invite_invalid: ["This link is not valid", "Check that you opened the whole link from your message, or ask your pharmacy for a new one."],
  consult_over: ["This consultation is over", "Contact your pharmacy if you still have questions."],
};

function screen(step, ...content) {
  const steps = ["Welcome", "Camera check", "Waiting room", "Consultation"];
  replace(view,
    step !== null ? h("p", { class: "steps" }, `Step ${step + 1} of ${steps.length}: `, h("strong", {}, steps[step])) : null,
    h("section", { class: "card" }, ...content));
  view.focus({ preventScroll: true });
  const heading = view.querySelector("h1");
  if (heading) announce(heading.textContent);
}

function stopScreen(code, fallback) {
  const [title, text] = MESSAGES[code] || ["Something went wrong", fallback || "Please try again later or contact your pharmacy."];
  screen(null, h("h1", {}, title), h("p", { role: "alert" }, text));
}

async function start() {
  const resume = sessionStorage.getItem(RESUME_KEY);
  if (resume) return deviceCheck({ resume });
  try {
    const found = await api("/invites/check", { method: "POST", body: { invite }, anonymous: true });
    welcome(found.pharmacy);
  } catch (error) {
    stopScreen(error.code, error.code === "offline" ? error.message : null);
  }
}

function welcome(pharmacy) {
  const agree = h("input", { type: "checkbox", id: "consent" });
  const next = h("button", { type: "button", id: "continue", disabled: true, onclick: () => deviceCheck({ consent: CONSENT_VERSION }) }, "Continue");
  agree.addEventListener("change", () => { next.disabled = !agree.checked; });
  screen(0,
    h("h1", {}, `Video consultation with ${pharmacy}`),
    h("p", {}, "A pharmacist will talk with you about your medicines by video. It takes about 10 to 15 minutes. You need a camera and a microphone; headphones help."),
    h("h2", {}, "Your consent"),
    h("div", { class: "consent-text", tabindex: "0", "aria-label": "Consent text" }, CONSENT_TEXT.map((t) => h("p", {}, t))),
    h("p", {}, h("label", { class: "inline", for: "consent" }, agree, "I have read this and agree to a video consultation.")),
    h("div", { class: "actions" }, next));
}

async function deviceCheck(how) {
  const preview = h("video", { class: "preview", autoplay: true, playsInline: true, muted: true, id: "preview", "aria-label": "Your camera" });
  const level = h("span", {});
  const problem = h("div", { "aria-live": "assertive" });
  const go = h("button", { type: "button", id: "join", disabled: true }, how.resume ? "Return to the consultation" : "Join the waiting room");
  screen(1,
    h("h1", {}, "Check your camera and microphone"),
    h("p", {}, "Your browser will ask to use them: please allow it. You should see yourself below; speak to see the bar move."),
    preview,
    h("p", { class: "hint", id: "level-label" }, "Microphone level (the bar moves when you speak)"),
    h("div", { class: "meter", "aria-hidden": "true" }, level),
    problem,
    h("div", { class: "actions" }, go));
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
  } catch (error) {
    const denied = error.name === "NotAllowedError" || error.name === "SecurityError";
    for (const part of [preview, level.parentElement, document.getElementById("level-label")]) part.hidden = true;
    replace(problem, h("div", { class: "notice error", role: "alert", id: "device-problem" },
      h("h2", {}, denied ? "Camera and microphone are blocked" : "No camera or microphone found"),
      h("p", {}, denied
        ? "This page may not use your camera or microphone. Allow them in your browser's site settings (the camera icon in the address bar), then try again."
        : "Connect a camera and a microphone, or try another device, then try again."),
      h("button", { type: "button", class: "secondary", onclick: () => deviceCheck(how) }, "Try again")));
    return;
  }
  preview.srcObject = stream;
  const stopMeter = meter(stream, level);
  go.disabled = false;
  go.addEventListener("click", () => { stopMeter(); consult(stream, how); });
}

function meter(stream, bar) {
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  context.createMediaStreamSource(stream).connect(analyser);
  const data = new Uint8Array(analyser.fftSize);
  let frame = 0;
  const tick = () => {
    analyser.getByteTimeDomainData(data);
    const peak = data.reduce((max, v) => Math.max(max, Math.abs(v - 128)), 0);
    bar.style.width = `${Math.min(100, (peak / 128) * 200)}%`;
    frame = requestAnimationFrame(tick);
  };
  tick();
  return () => { cancelAnimationFrame(frame); context.close(); };
}

function consult(stream, how) {
  const { element: stage, remote, local, placeholder, recording: recPill } = videoStage({
    waiting: "Connecting…",
    peer: "Your pharmacist",
  });
  const banner = h("div", { "aria-live": "assertive" });
  const ask = h("div", {});
  const fee = h("div", {});
  const controls = h("div", { class: "controls" });
  const title = h("h1", { id: "call-title" }, "Waiting room");
  local.srcObject = stream;
  local.hidden = false;

  const call = new ConsultCall({
    role: "patient",
    stream,
    join: async () => ({ invite, consent_version: how.consent }),
    resume: how.resume || null,
    onResume: (token) => sessionStorage.setItem(RESUME_KEY, token),
  });

  const say = (text, kind = "error") => replace(banner, text ? h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text) : "");

  function renderControls(inCall) {
    replace(controls,
      inCall ? muteButtons(call, () => renderControls(true)) : null,
      h("button", { type: "button", class: "danger", id: "leave", onclick: leave }, "Leave"));
  }

  function leave() {
    call.leave();
    stream.getTracks().forEach((t) => t.stop());
    screen(null, h("h1", {}, "You left the consultation"),
      h("p", {}, "If you left by mistake, you can go back to the waiting room."),
      h("div", { class: "actions" }, h("button", { type: "button", onclick: () => deviceCheck({ resume: sessionStorage.getItem(RESUME_KEY) }) }, "Go back")));
  }

  function askRecording() {
    replace(ask, h("div", { class: "notice", role: "alertdialog", "aria-labelledby": "rec-q" },
      h("h2", { id: "rec-q" }, "Your pharmacist asks to record this consultation"),
      h("p", {}, "The recording is kept securely in your pharmacy record. You can say no; the consultation continues either way."),
      h("div", { class: "actions" },
        h("button", { type: "button", id: "allow-recording", onclick: () => { call.consentToRecording(true); replace(ask); } }, "Allow recording"),
        h("button", { type: "button", class: "secondary", onclick: () => { call.consentToRecording(false); replace(ask); } }, "Don't record"))));
    document.getElementById("allow-recording").focus();
  }

  call.addEventListener("joined", (e) => { say(""); title.textContent = e.detail.state === "waiting" ? "Waiting room" : "Your consultation"; });
  call.addEventListener("waiting", () => {
    title.textContent = "Waiting room";
    placeholder.hidden = false;
    placeholder.textContent = "Your pharmacist will let you in shortly. Please keep this page open.";
    renderControls(false);
    announce("You are in the waiting room.");
    feePanel(fee, () => sessionStorage.getItem(RESUME_KEY));
  });
  call.addEventListener("admitted", () => {
    clearFee(fee); // an unpaid fee is billed after: the patient's own page, or the counter
    title.textContent = "Your consultation";
    placeholder.textContent = "Connecting to your pharmacist…";
    renderControls(true);
    announce("Your pharmacist let you in.");
  });
  call.addEventListener("remote", (e) => { remote.srcObject = e.detail; placeholder.hidden = true; });
  call.addEventListener("connection", (e) => {
    if (e.detail.state === "connected") say("");
    if (e.detail.state === "failed") say("The video connection dropped; reconnecting…");
  });
  call.addEventListener("recordingasked", (e) => (e.detail.consent ? askRecording() : replace(ask)));
  call.addEventListener("recording", (e) => {
    recPill.hidden = !e.detail.active;
    announce(e.detail.active ? "Recording started." : "Recording stopped.");
    replace(ask, e.detail.active ? h("div", { class: "notice" }, h("p", {}, "This consultation is being recorded."),
      h("button", { type: "button", class: "secondary", onclick: () => call.consentToRecording(false) }, "Stop recording")) : "");
  });
  call.addEventListener("reconnecting", () => say("Your connection dropped. Reconnecting…"));
  call.addEventListener("refused", (e) => {
    stream.getTracks().forEach((t) => t.stop());
    sessionStorage.removeItem(RESUME_KEY);
    stopScreen(e.detail.code, e.detail.message);
  });
  call.addEventListener("error", (e) => say(e.detail.message));
  call.addEventListener("ended", (e) => {
    if (e.detail.reason !== "ended" && e.detail.reason !== "replaced") return; // leaving shows its own screen
    stream.getTracks().forEach((t) => t.stop());
    sessionStorage.removeItem(RESUME_KEY);
    screen(null, h("h1", {}, e.detail.reason === "replaced" ? "You joined from another tab" : "Your consultation has ended"),
      h("p", {}, e.detail.reason === "replaced" ? "The consultation continues in the other tab or device." : "Thank you. You can close this page now."));
  });

  replace(view, banner, h("div", { class: "page-head" }, title, h("span", { class: "spacer" })), fee, stage, ask, controls);
  view.focus({ preventScroll: true });
  renderControls(false);
  call.connect();
}

start();
