// The live calls table: one server-sent event stream (/console/live/events) pushes the list of
// calls whenever it changes; between events only the durations tick, computed here from `since`.
"use strict";
(() => {
  const table = document.getElementById("live");
  if (!table) return;
  const body = document.getElementById("live-calls");
  const count = document.getElementById("live-count");
  const empty = document.getElementById("live-empty");
  const status = document.getElementById("live-status");
  let skew = Number(table.dataset.now) - Date.now() / 1000; // server clock minus ours, seconds

  const duration = (since) => {
    if (!since) return "—";
    const whole = Math.max(0, Math.round(Date.now() / 1000 + skew - since));
    return whole >= 60 ? `${Math.floor(whole / 60)}m ${String(whole % 60).padStart(2, "0")}s` : `${whole}s`;
  };
  const ms = (value) => (value === null || value === undefined ? "—" : `${Number(value).toFixed(1)} ms`);
  const cell = (text) => { const td = document.createElement("td"); td.textContent = text; return td; };

  function row(call) {
    const tr = document.createElement("tr");
    tr.dataset.callId = call.call_id;
    const link = document.createElement("a");
    link.href = `/console/calls/${encodeURIComponent(call.call_id)}`;
    link.textContent = call.call_id;
    const first = document.createElement("td"); first.append(link);
    const state = document.createElement("span");
    state.className = `state ${call.state || ""}`; state.textContent = call.state || "—";
    const stateCell = document.createElement("td"); stateCell.append(state);
    const since = cell(duration(call.since)); since.dataset.since = call.since || "";
    tr.append(first, cell(call.transport || "—"), cell(call.language || "—"), stateCell, since,
              cell(call.turns ?? "—"), cell(ms(call.last_v2v_ms)), cell(call.worker || "—"));
    return tr;
  }

  function show(snapshot) {
    skew = snapshot.now - Date.now() / 1000;
    body.replaceChildren(...snapshot.calls.map(row));
    count.textContent = String(snapshot.calls.length);
    empty.hidden = snapshot.calls.length > 0;
  }

  setInterval(() => {
    for (const td of body.querySelectorAll("td[data-since]")) td.textContent = duration(Number(td.dataset.since));
  }, 1000);

  const events = new EventSource(table.dataset.events);
  events.addEventListener("calls", (event) => {
    show(JSON.parse(event.data));
    status.textContent = "Live: updates itself as calls start, change state and end.";
  });
  events.addEventListener("error", () => {
    status.textContent = "Connection to the server lost; reconnecting…";
  });
})();

// A call's recording and its transcript, kept together: each turn's button plays the recording
// from that turn's reply, and while it plays the turn being heard is marked.
(() => {
  const audio = document.getElementById("recording");
  if (!audio) return;
  const turns = [...document.querySelectorAll("article.turn[data-at]")];
  for (const button of document.querySelectorAll("button.seek")) {
    button.addEventListener("click", () => {
      audio.currentTime = Number(button.dataset.at);
      audio.play().catch(() => {});  // autoplay may be refused; the position is set either way
    });
  }
  audio.addEventListener("timeupdate", () => {
    let current = null;
    for (const turn of turns) if (Number(turn.dataset.at) <= audio.currentTime + 0.05) current = turn;
    for (const turn of turns) {
      if (turn === current) turn.setAttribute("aria-current", "true");
      else turn.removeAttribute("aria-current");
    }
  });
})();
