// Message text to DOM nodes: plain text nodes, and http(s) URLs as links.
// Nothing is ever parsed as HTML.
const URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;
const TRAILING = /[.,;:!?'"\])}>]$/;

function count(text, ch) {
  return text.split(ch).length - 1;
}

// "(see https://example.org/a_(b))." -> the link is https://example.org/a_(b)
function trim(url) {
  while (TRAILING.test(url)) {
    const last = url[url.length - 1];
    if (last === ")" && count(url, "(") >= count(url, ")")) break;
    url = url.slice(0, -1);
  }
  return url;
}

export function linkify(text, doc = document) {
  const out = doc.createDocumentFragment();
  let done = 0;
  for (const match of text.matchAll(URL_RE)) {
    const raw = trim(match[0]);
    let href = null;
    try {
      const url = new URL(raw);
      if (url.protocol === "http:" || url.protocol === "https:") href = url.href;
    } catch (e) {
      href = null;
    }
    if (!href) continue;
    if (match.index > done) out.append(doc.createTextNode(text.slice(done, match.index)));
    const a = doc.createElement("a");
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.textContent = raw;
    out.append(a);
    done = match.index + raw.length;
  }
  if (done < text.length) out.append(doc.createTextNode(text.slice(done)));
  return out;
}
