// e4c2 console: the little script the pages need. Loaded from 'self' only
// (the Content-Security-Policy allows no inline script).
"use strict";

// Parts of a page marked data-refresh="ms" are re-read from the server
// every so often (a client's sync state, a topic's members), so a change
// on a device shows without a reload. Forms inside are left alone while
// one of their fields has the focus.
function startRefresh(el) {
  const every = parseInt(el.dataset.refresh, 10) || 2000;
  const tick = async () => {
    if (!document.hidden && !el.contains(document.activeElement)) {
      try {
        const resp = await fetch(location.href, { credentials: "same-origin", redirect: "manual" });
        if (resp.type === "opaqueredirect" || resp.status === 401 || resp.status === 303) {
          location.reload();
          return;
        }
        if (resp.ok) {
          const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
          const fresh = doc.getElementById(el.id);
          if (fresh) { el.replaceChildren(...fresh.childNodes); }
        }
      } catch (e) { /* network hiccup: try again later */ }
    }
    setTimeout(tick, every);
  };
  setTimeout(tick, every);
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  return td;
}

// The live events page: an EventSource on events/stream; each event is an
// audit entry, added on top (text only, never HTML).
function startLive(tbody) {
  const status = document.getElementById("stream-status");
  const seen = new Set([...tbody.rows].map((r) => r.dataset.position));
  const from = tbody.dataset.from ? "?from=" + encodeURIComponent(tbody.dataset.from) : "";
  const src = new EventSource("events/stream" + from);
  src.onopen = () => { status.textContent = "live"; status.className = "good"; };
  src.onerror = () => { status.textContent = "reconnecting…"; status.className = "warn"; };
  src.addEventListener("logout", (m) => {
    src.close();
    let reason = "your session has ended; log in again";
    try { reason = JSON.parse(m.data).reason || reason; } catch (err) { /* keep the default */ }
    location.href = "login?m=" + encodeURIComponent(reason);
  });
  src.onmessage = (m) => {
    let e;
    try { e = JSON.parse(m.data); } catch (err) { return; }
    if (seen.has(String(e.position))) { return; }
    seen.add(String(e.position));
    const tr = document.createElement("tr");
    tr.className = "fresh";
    tr.dataset.position = String(e.position);
    tr.dataset.type = e.type || "";
    const when = e.time ? e.time.replace(/\.\d+/, "").replace("T", " ") : "";
    [e.position, when, e.type, e.actor, e.client || (e.client_id || "").slice(0, 12),
      e.topic || (e.topic_hash || "").slice(0, 12), e.key_version || "",
      (e.command || "") + (e.recipients ? " → " + e.recipients : "")].forEach((v) => tr.appendChild(cell(v)));
    tbody.prepend(tr);
    while (tbody.rows.length > 500) { tbody.deleteRow(-1); }
  };
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh]").forEach(startRefresh);
  const live = document.getElementById("live-events");
  if (live) { startLive(live); }
});
