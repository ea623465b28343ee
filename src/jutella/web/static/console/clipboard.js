// Copying text, with a fallback where the asynchronous clipboard is not
// available (plain http on a host other than localhost): the shown element's
// text is selected and copied the old way, and stays selected for the user.

export async function copyText(text, shown) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through to the selection
  }
  if (shown instanceof HTMLInputElement || shown instanceof HTMLTextAreaElement) {
    shown.focus();
    shown.select();
  } else if (shown) {
    const range = document.createRange();
    range.selectNodeContents(shown);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  try {
    return document.execCommand("copy");
  } catch {
    return false;
  }
}
