// One side of a video consult, as docs/signaling.md describes it: the signaling socket
// (join, waiting room, admission, relayed offer/answer/ICE, mute, stats, recording, end),
// the peer connection to the other browser, and the send-only connection to the hub's
// recorder while both parties consent. A dropped socket comes back with the resume token
// within the hub's grace period; the pages then renegotiate (the patient's page offers).
//
// Events (CustomEvent, detail in parentheses): joined ({state}), waiting, peer ({role,
// present}), admitted, remote (MediaStream), connection (state), mute ({audio, video}),
// quality ({own, peer}), recording ({active}), recordingasked ({consent}), reconnecting,
// ended, refused ({code, message}), error ({code, message}).

const FINAL_CLOSES = new Set([1000, 1008, 4000, 4001, 4003]);
// why the hub closed for good: the consult is over, a newer socket of ours took over, or
// the pharmacist's sign-in ended (signed out, revoked, account disabled)
const CLOSE_REASONS = { 4000: "ended", 4001: "replaced", 4003: "unauthorized" };
const STATS_EVERY_MS = 4000;
const RETRY_MS = [500, 1000, 2000, 4000, 8000];

export class ConsultCall extends EventTarget {
  constructor({ role, stream, join, resume = null, onResume = () => {} }) {
    super();
    this.role = role;
    this.stream = stream;
    this.join = join; // async () => the join's fields (access token + consult, or invite + consent)
    this.resume = resume;
    this.onResume = onResume;
    this.iceServers = [];
    this.pc = null;
    this.recorder = null;
    this.pending = [];
    this.admitted = false;
    this.over = false;
    this.attempt = 0;
    this.rejoin = false;
    this.statsTimer = 0;
    this.lastStats = null;
    this.peerQuality = null;
    this.muted = { audio: false, video: false }; // this side's microphone and camera
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  connect() {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/consult`;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.addEventListener("open", async () => {
      this.attempt = 0;
      const fields = this.resume ? { resume: this.resume } : await this.join().catch(() => null);
      if (fields) this.send({ type: "join", ...fields });
      else this.finish("signed_out", 1000);
    });
    ws.addEventListener("message", (event) => {
      this.receive(JSON.parse(event.data)).catch((error) => {
        // a description or candidate the browser could not take: say so, keep the call going
        this.emit("error", { code: "media", message: `The video connection hit a problem: ${error.message}` });
      });
    });
    ws.addEventListener("close", (event) => this.closed(ws, event));
  }

  send(message) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  closed(ws, event) {
    if (ws !== this.ws || this.over) return;
    const again = event.code === 1008 ? this.rejoin : !FINAL_CLOSES.has(event.code);
    this.rejoin = false;
    if (!again) {
      this.finish(CLOSE_REASONS[event.code] ?? null);
      return;
    }
    this.emit("reconnecting", { attempt: this.attempt + 1 });
    const delay = RETRY_MS[Math.min(this.attempt, RETRY_MS.length - 1)];
    this.attempt += 1;
    setTimeout(() => !this.over && this.connect(), delay);
  }

  async receive(message) {
    switch (message.type) {
      case "joined":
        this.resume = message.resume;
        this.onResume(message.resume);
        this.emit("joined", { state: message.state });
        break;
      case "waiting":
        this.admitted = false;
        this.emit("waiting");
        break;
      case "peer_joined":
        this.emit("peer", { role: message.role, present: true });
        // the pharmacist came back: a new connection, unless one is being made already (our
        // own rejoin offers on its `admitted`, and this hello may follow it)
        if (this.role === "patient" && this.admitted && message.role === "pharmacist" && !this.pc) {
          await this.offer();
        }
        break;
      case "peer_left":
        // their side of the call is gone; a new offer comes when they are back
        this.pc?.close();
        this.pc = null;
        this.stopRecorder();
        this.emit("peer", { role: message.role, present: false });
        break;
      case "admitted":
        this.admitted = true;
        this.iceServers = message.ice_servers || [];
        this.emit("admitted");
        if (this.role === "patient") await this.offer();
        break;
      case "offer":
        await this.answer(message.sdp);
        break;
      case "answer":
        // only the answer to the offer now outstanding (an older one may arrive late)
        if (this.pc?.signalingState !== "have-local-offer") break;
        await this.pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
        await this.flushCandidates();
        break;
      case "ice":
        await this.addCandidate(message);
        break;
      case "mute":
        this.emit("mute", { audio: message.audio, video: message.video });
        break;
      case "quality":
        this.peerQuality = message;
        this.emit("quality", { own: this.lastStats, peer: message });
        break;
      case "recording":
        this.emit("recording", { active: message.active });
        if (message.active) await this.startRecorder();
        else this.stopRecorder();
        break;
      case "recording_consent":
        this.emit("recordingasked", { consent: message.consent });
        break;
      case "record_answer":
        await this.recorder?.setRemoteDescription({ type: "answer", sdp: message.sdp });
        break;
      case "ended":
        this.finish("ended");
        break;
      case "error":
        this.refusal(message);
        break;
      default:
        break; // pong, and anything a newer hub adds
    }
  }

  refusal(message) {
    // a refused join closes the socket (1008); a refused message leaves the call as it is
    const joinCodes = ["invite_invalid", "invite_used", "invite_expired", "consent_required",
      "unauthorized", "not_found", "resume_invalid", "resume_expired", "consult_over", "bad_join"];
    if (joinCodes.includes(message.code)) {
      if (message.code.startsWith("resume")) {
        this.resume = null; // too late to carry on: join afresh with what we joined with
        this.rejoin = true;
        return;
      }
      this.emit("refused", message);
      this.finish(message.code);
    } else {
      this.emit("error", message);
    }
  }

  newPeer() {
    this.pc?.close();
    this.pending = [];
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    for (const track of this.stream.getTracks()) pc.addTrack(track, this.stream);
    pc.addEventListener("icecandidate", ({ candidate }) => {
      if (candidate?.candidate) this.send({ type: "ice", ...candidate.toJSON() });
    });
    pc.addEventListener("track", ({ streams }) => streams[0] && this.emit("remote", streams[0]));
    pc.addEventListener("connectionstatechange", () => this.connection(pc));
    this.startStats();
    return pc;
  }

  connection(pc) {
    if (pc !== this.pc) return;
    const state = pc.connectionState;
    this.emit("connection", { state });
    if (state === "connected") this.send({ type: "media", connected: true });
    if (state === "failed") {
      this.send({ type: "media", connected: false });
      if (this.role === "patient") this.offer(); // a new connection, new candidates
    }
  }

  async offer() {
    const pc = this.newPeer();
    await pc.setLocalDescription(await pc.createOffer());
    this.send({ type: "offer", sdp: pc.localDescription.sdp });
  }

  async answer(sdp) {
    const pc = this.newPeer();
    await pc.setRemoteDescription({ type: "offer", sdp });
    await this.flushCandidates();
    await pc.setLocalDescription(await pc.createAnswer());
    this.send({ type: "answer", sdp: pc.localDescription.sdp });
  }

  async addCandidate({ candidate, sdpMid, sdpMLineIndex, usernameFragment }) {
    const init = { candidate, sdpMid, sdpMLineIndex, usernameFragment: usernameFragment ?? undefined };
    if (!this.pc?.remoteDescription) {
      this.pending.push(init);
      return;
    }
    // a candidate of an earlier connection (another ufrag) is refused by the browser: ignored
    await this.pc.addIceCandidate(init).catch(() => {});
  }

  async flushCandidates() {
    const waiting = this.pending;
    this.pending = [];
    for (const candidate of waiting) await this.addCandidate(candidate);
  }

  // -- controls -----------------------------------------------------------------------------

  toggleMute(kind) {
    this.muted = { ...this.muted, [kind]: !this.muted[kind] };
    const { audio, video } = this.muted;
    for (const track of this.stream.getAudioTracks()) track.enabled = !audio;
    for (const track of this.stream.getVideoTracks()) track.enabled = !video;
    this.send({ type: "mute", audio, video });
  }

  admit() {
    this.send({ type: "admit" });
  }

  consentToRecording(consent) {
    this.send({ type: "recording_consent", consent });
  }

  leave() {
    this.send({ type: "leave" });
    this.finish(null, 1000);
  }

  end(notes, counselling) {
    this.send({ type: "end", notes, counselling });
  }

  finish(reason, code) {
    if (this.over && !this.ws) return;
    this.over = true;
    clearInterval(this.statsTimer);
    this.stopRecorder();
    this.pc?.close();
    this.pc = null;
    const ws = this.ws;
    this.ws = null;
    if (code && ws?.readyState === WebSocket.OPEN) ws.close(code);
    this.emit("ended", { reason });
  }

  // -- recording: a send-only connection to the hub's recorder, complete offer ------------

  async startRecorder() {
    this.stopRecorder();
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.recorder = pc;
    for (const track of this.stream.getTracks()) pc.addTransceiver(track, { direction: "sendonly" });
    await pc.setLocalDescription(await pc.createOffer());
    if (pc.iceGatheringState !== "complete") {
      await new Promise((resolve) => {
        pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
        setTimeout(resolve, 3000);
      });
    }
    if (this.recorder === pc) this.send({ type: "record_offer", sdp: pc.localDescription.sdp });
  }

  stopRecorder() {
    this.recorder?.close();
    this.recorder = null;
  }

  // -- quality: a getStats summary every few seconds, to the hub and to the page ----------

  startStats() {
    clearInterval(this.statsTimer);
    let before = null;
    this.statsTimer = setInterval(async () => {
      if (!this.pc || this.pc.connectionState !== "connected") return;
      const now = summarise(await this.pc.getStats());
      if (before) {
        const seconds = (now.at - before.at) / 1000;
        const received = now.packets - before.packets;
        const lost = Math.max(0, now.lost - before.lost);
        const stats = {
          bitrate_kbps: round(Math.max(0, (now.bytes - before.bytes) * 8) / 1000 / seconds),
          fps: round(Math.min(240, now.fps)),
          packet_loss: round(received + lost > 0 ? (100 * lost) / (received + lost) : 0),
          rtt_ms: round(Math.min(60000, now.rtt * 1000)),
        };
        this.lastStats = stats;
        this.send({ type: "stats", ...stats });
        this.emit("quality", { own: stats, peer: this.peerQuality });
      }
      before = now;
    }, STATS_EVERY_MS);
  }
}

const round = (value) => Math.round(value * 10) / 10;

function summarise(report) {
  const total = { bytes: 0, packets: 0, lost: 0, fps: 0, rtt: 0, at: performance.now() };
  report.forEach((entry) => {
    if (entry.type === "inbound-rtp") {
      total.bytes += entry.bytesReceived || 0;
      total.packets += entry.packetsReceived || 0;
      total.lost += entry.packetsLost || 0;
      if (entry.kind === "video") total.fps = entry.framesPerSecond || 0;
    } else if (entry.type === "candidate-pair" && entry.nominated && entry.currentRoundTripTime) {
      total.rtt = entry.currentRoundTripTime;
    }
  });
  return total;
}

// A rating for the connection-quality indicator: good, fair or poor.
export function rating(stats) {
  if (!stats) return "unknown";
  if (stats.packet_loss > 8 || stats.rtt_ms > 600 || stats.fps < 8) return "poor";
  if (stats.packet_loss > 2 || stats.rtt_ms > 250 || stats.fps < 20) return "fair";
  return "good";
}
