// Attachments, the rating and the transcript (attach.js, rating.js,
// transcript.js) are loaded only when first needed, so that opening the
// widget stays small. This module wires them to the frame: the attach button
// in the composer, a box for each attachment event (filled once attach.js is
// there), and the rating and transcript actions once a chat has ended.

const version = new URL(import.meta.url).search;
const loaded = new Map();

function load(doc, name) {
  if (!loaded.has(name)) {
    if (!loaded.size) {
      const css = doc.createElement("link");
      css.rel = "stylesheet";
      css.href = `/static/widget/attach.css${version}`;
      doc.head.append(css);
    }
    loaded.set(name, import(`./${name}.js${version}`));
  }
  return loaded.get(name);
}

export function setupExtras(doc, i18n, visitor, view) {
  let attach = null;
  const attachView = () => load(doc, "attach").then(({ AttachView }) => {
    attach = attach || new AttachView(doc, i18n, visitor);
    return attach;
  });
  const input = doc.getElementById("attach-input");
  doc.getElementById("attach").addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    const file = input.files && input.files[0];
    input.value = "";
    if (file) attachView().then((a) => a.upload(file));
  });
  view.attachments = {
    render(f) {
      const box = doc.createElement("span");
      box.className = "attachment";
      box.dataset.testid = "attachment";
      attachView().then((a) => a.fill(box, f));
      return box;
    },
    clear() {
      if (attach) attach.clear();
    },
  };
  let after = null;
  return {
    // told of every change in the conversation's state
    update(state) {
      if (!after && state.state === "closed" && state.conv !== null) {
        after = Promise.all([load(doc, "rating"), load(doc, "transcript")]).then(([r, t]) => {
          const slot = doc.getElementById("after-chat");
          return [new r.RatingView(doc, i18n, slot, visitor), new t.TranscriptView(doc, i18n, slot, visitor)];
        });
      }
      if (after) after.then((parts) => parts.forEach((part) => part.update(state)));
    },
  };
}
