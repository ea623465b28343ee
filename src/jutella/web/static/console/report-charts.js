// Bar charts of jutella's own for the Reports view: SVG built with
// createElementNS, text through textContent, colours from CSS classes
// (reports.css); no third-party script, no inline style. Every chart says its
// numbers in words too (the caller puts a table beside it, and the SVG has
// an aria-label).

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 640;
const HEIGHT = 240;
const LEFT = 40;
const RIGHT = 8;
const TOP = 12;
const BOTTOM = 40;

function el(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

/**
 * barChart({labels, series: [{name, values, cls}], ariaLabel, stacked, showEvery})
 * labels: the x axis (one per bar group); series: stacked (or side by side)
 * values; showEvery: label every n-th bar (default: as many as fit).
 */
export function barChart({ labels, series, ariaLabel, stacked = true, showEvery = 0 }) {
  const svg = el("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": ariaLabel, class: "rp-svg" });
  const plotW = WIDTH - LEFT - RIGHT;
  const plotH = HEIGHT - TOP - BOTTOM;
  const totals = labels.map((_, i) => (stacked
    ? series.reduce((sum, s) => sum + (s.values[i] || 0), 0)
    : Math.max(0, ...series.map((s) => s.values[i] || 0))));
  const max = Math.max(1, ...totals);
  const y = (v) => TOP + plotH - (v / max) * plotH;
  // the axis: zero and the largest value
  svg.append(el("line", { x1: LEFT, x2: WIDTH - RIGHT, y1: y(0), y2: y(0), class: "rp-axis" }));
  svg.append(el("line", { x1: LEFT, x2: WIDTH - RIGHT, y1: y(max), y2: y(max), class: "rp-grid" }));
  svg.append(el("text", { x: LEFT - 6, y: y(max) + 4, class: "rp-tick", "text-anchor": "end" }, max));
  svg.append(el("text", { x: LEFT - 6, y: y(0) + 4, class: "rp-tick", "text-anchor": "end" }, 0));
  const slot = plotW / Math.max(1, labels.length);
  const groups = stacked ? 1 : series.length;
  const barW = Math.max(1, (slot * 0.78) / groups);
  const every = showEvery || Math.max(1, Math.ceil(labels.length / 8));
  labels.forEach((label, i) => {
    const x0 = LEFT + i * slot + slot * 0.11;
    let base = 0;
    series.forEach((s, k) => {
      const value = s.values[i] || 0;
      if (!value) return;
      const x = stacked ? x0 : x0 + k * barW;
      const from = stacked ? base : 0;
      const rect = el("rect", {
        x: x.toFixed(1), y: y(from + value).toFixed(1), width: barW.toFixed(1),
        height: Math.max(0, y(from) - y(from + value)).toFixed(1), class: `rp-bar ${s.cls}`,
      });
      rect.append(el("title", {}, `${label}: ${s.name} ${value}`));
      svg.append(rect);
      if (stacked) base += value;
    });
    if (i % every === 0 || i === labels.length - 1 && labels.length <= 12) {
      svg.append(el("text", { x: (LEFT + i * slot + slot / 2).toFixed(1), y: HEIGHT - BOTTOM + 22,
        class: "rp-tick", "text-anchor": "middle" }, label));
    }
  });
  return svg;
}
