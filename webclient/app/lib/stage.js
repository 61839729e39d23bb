// The video area both pages show (the other side large, oneself small, pills over it) and
// the microphone and camera toggles under it.

import { h } from "./dom.js";

export function videoStage({ waiting, peer, pills = [] }) {
  const remote = h("video", { class: "remote", autoplay: true, playsInline: true, id: "remote-video", "aria-label": peer });
  const local = h("video", { class: "local", autoplay: true, playsInline: true, muted: true, id: "local-video", "aria-label": "You", hidden: true });
  const placeholder = h("div", { class: "placeholder" }, waiting);
  const recording = h("span", { class: "pill rec", id: "recording-indicator", hidden: true }, "Recording");
  const element = h("div", { class: "stage" }, remote, placeholder, local, h("div", { class: "overlay" }, ...pills, recording));
  return { element, remote, local, placeholder, recording };
}

// The two toggles of `call`'s own microphone and camera; `redraw` after each press.
export function muteButtons(call, redraw) {
  const toggle = (kind) => () => {
    call.toggleMute(kind);
    redraw();
  };
  const { audio, video } = call.muted;
  return [
    h("button", { type: "button", class: "secondary toggle", "aria-pressed": String(audio), onclick: toggle("audio") },
      audio ? "Unmute microphone" : "Mute microphone"),
    h("button", { type: "button", class: "secondary toggle", "aria-pressed": String(video), onclick: toggle("video") },
      video ? "Turn camera on" : "Turn camera off"),
  ];
}
