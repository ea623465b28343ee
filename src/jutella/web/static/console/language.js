// The language switcher. Signed in, the choice is saved on the account
// (PUT /api/v1/me/language, which also sets the jutella_lang cookie); signed
// out, it is kept in the jutella_lang cookie. Either way the page reloads,
// because the page embeds the catalog of its language.

import { api } from "./api.js";
import { announce } from "./announce.js";
import { h, uid } from "./dom.js";
import { lang, languages, setLanguageCookie, t } from "./i18n.js";

export function languageSwitcher({ signedIn }) {
  const select = h("select", { id: uid("lang"), class: "compact", lang: lang },
    languages.map((l) => h("option", { value: l.code, lang: l.code, text: l.name, selected: l.code === lang })));
  select.addEventListener("change", async () => {
    const code = select.value;
    try {
      if (signedIn()) await api("PUT", "/api/v1/me/language", { language: code });
      else setLanguageCookie(code);
      location.reload();
    } catch (failure) {
      select.value = lang;
      if (!failure.handled) announce(failure.message);
    }
  });
  return h("div", { class: "lang-switch" }, h("label", { for: select.id, text: t("Language") }), select);
}
