// The storage probe (docs/widget.md, "Loading"): reads, never writes; says
// "resume" to its parent only when a chat is going. Kept small: every first
// page view loads it.
addEventListener("message", (e) => {
  const m = e.data;
  if (e.source !== parent || !m || m.jutella !== 1 || m.type !== "probe") return;
  let s = null;
  try {
    s = JSON.parse(localStorage.getItem("jutella-widget"));
  } catch (x) {
    // blocked (a third-party frame) or unreadable: nothing to resume
  }
  if (s && s.v === 1 && (s.active || (Array.isArray(s.pending) && s.pending.length))) {
    parent.postMessage({ jutella: 1, type: "resume" }, e.origin);
  }
});
