"""The staff console in real Chromium (Playwright), against a live server on
SQLite and PostgreSQL: set-up link, invitations, two-factor sign-in, roles,
translated errors, and untrusted text staying text."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pyotp
import pytest
from playwright.sync_api import Page, expect

from jutella.accounts import actions
from jutella.i18n import catalog

from tests.helpers import PASSWORD, add_staff, sign_in

pytestmark = pytest.mark.browser

HOSTILE = "<img src=x onerror=alert(1)>"


# -- helpers ----------------------------------------------------------------------------------
class Watch:
    """Collects what must never happen on a console page: CSP violations,
    uncaught script errors and dialogs (an injected alert())."""

    def __init__(self) -> None:
        self.csp: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []

    def attach(self, page: Page) -> Page:
        page.on("console", lambda m: self.csp.append(m.text) if "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

        def dialog(d) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)
        return page

    def check(self) -> None:
        assert self.csp == [], self.csp
        assert self.errors == [], self.errors
        assert self.dialogs == [], self.dialogs


@pytest.fixture
def watch() -> Iterator[Watch]:
    w = Watch()
    yield w
    w.check()


@pytest.fixture
def new_page(browser_context_factory, watch):
    def make(**kwargs) -> Page:
        return watch.attach(browser_context_factory(**kwargs).new_page())
    return make


def sign_in_page(page: Page, live, email: str, password: str = PASSWORD) -> None:
    page.goto(live.url + "/console")
    page.get_by_test_id("login-email").fill(email)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("logout")).to_be_visible()


def nav(page: Page, label: str):
    return page.get_by_role("navigation").get_by_role("link", name=label, exact=True)


# -- the scenario ------------------------------------------------------------------------
def test_first_admin_sets_up_invites_an_agent_who_turns_on_two_factor(live, clock, new_page):
    link = live.call(actions.ensure_setup_link, live.rt)
    admin = new_page()

    # The first administrator opens the set-up link and chooses a password.
    admin.goto(link)
    expect(admin.get_by_role("heading", name="Set up jutella")).to_be_visible()
    assert "token" not in admin.url  # taken out of the address bar at once
    admin.get_by_label("Your name").fill("Aino Admin")
    admin.get_by_label("Email").fill("aino@example.org")
    admin.get_by_label("Password", exact=True).fill(PASSWORD)
    admin.get_by_label("Repeat the password").fill(PASSWORD)
    admin.get_by_role("button", name="Create the administrator account").click()

    # ... and is signed in at once: no second sign-in (issue 17).
    expect(admin.get_by_test_id("signed-in-name")).to_have_text("Aino Admin")
    expect(admin.get_by_test_id("login-password")).to_have_count(0)
    expect(admin.get_by_test_id("presence")).to_have_attribute("data-state", re.compile("online|away|offline"))

    # Invites an agent on Accounts and reads the invitation link.
    nav(admin, "Accounts").click()
    expect(admin.get_by_role("heading", name="Accounts", exact=True)).to_be_visible()
    admin.get_by_label("Email").fill("eero@example.org")
    admin.get_by_label("Name", exact=True).fill("Eero Agent")
    form = admin.get_by_test_id("account-create")
    expect(form.get_by_role("checkbox", name="Agent")).to_be_checked()
    expect(form.get_by_role("checkbox", name="Administrator")).not_to_be_checked()
    admin.get_by_test_id("account-create-submit").click()
    invitation = admin.get_by_test_id("invitation-link")
    expect(invitation).to_have_value(re.compile(r"/console/invite#token=\S+$"))
    expect(invitation).to_have_attribute("readonly", "")
    invite_link = invitation.input_value()
    row = admin.get_by_test_id("account-row").filter(has_text="eero@example.org")
    expect(row).to_have_attribute("data-state", "invited")
    expect(row).to_contain_text("Agent")

    # The agent, in a browser of their own, accepts the invitation.
    agent = new_page()
    agent.goto(invite_link)
    expect(agent.get_by_test_id("invite-email")).to_have_text("eero@example.org")
    expect(agent.get_by_test_id("invite-name")).to_have_text("Eero Agent")
    assert "token" not in agent.url
    agent.get_by_label("Choose a password").fill(PASSWORD)
    agent.get_by_label("Repeat the password").fill(PASSWORD)
    agent.get_by_role("button", name="Save the password").click()
    expect(agent.get_by_test_id("signed-in-name")).to_have_text("Eero Agent")  # signed in at once

    # Turns on two-factor sign-in on My account.
    nav(agent, "My account").click()
    agent.get_by_test_id("totp-begin").click()
    expect(agent.get_by_test_id("totp-qr")).to_be_visible()
    assert agent.get_by_test_id("totp-qr").get_attribute("src").startswith("data:image/svg+xml")
    secret = agent.get_by_test_id("totp-secret").inner_text().strip()
    agent.get_by_test_id("totp-code").fill(pyotp.TOTP(secret).at(clock.now()))
    agent.get_by_test_id("totp-confirm").click()
    codes = agent.get_by_test_id("recovery-codes").locator("li")
    expect(codes).to_have_count(10)
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{8}", c.strip()) for c in codes.all_inner_texts())

    # Signs out, and signing in again asks for a code.
    agent.get_by_test_id("logout").click()
    expect(agent.get_by_test_id("login-email")).to_have_value("eero@example.org")
    agent.get_by_test_id("login-password").fill(PASSWORD)
    agent.get_by_test_id("login-submit").click()
    expect(agent.get_by_test_id("login-totp")).to_be_visible()
    expect(agent.get_by_test_id("logout")).to_have_count(0)
    clock.advance(seconds=31)  # a fresh time step: the code used to confirm cannot be replayed
    agent.get_by_test_id("login-totp").fill(pyotp.TOTP(secret).at(clock.now()))
    agent.get_by_test_id("login-submit").click()
    expect(agent.get_by_test_id("signed-in-name")).to_have_text("Eero Agent")

    # The administrator's list shows the agent active, with two-factor on.
    nav(admin, "My account").click()
    nav(admin, "Accounts").click()
    row = admin.get_by_test_id("account-row").filter(has_text="eero@example.org")
    expect(row).to_have_attribute("data-state", "active")
    expect(row).to_contain_text("On")


# -- errors, in English and Finnish ----------------------------------------------------------------
def test_wrong_password_shows_the_translated_error(live, new_page):
    add_staff(live, "aino@example.org", ["agent"])
    for locale, lang in (("en-GB", "en"), ("fi-FI", "fi")):
        page = new_page(locale=locale)
        page.goto(live.url + "/console")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        page.get_by_test_id("login-email").fill("aino@example.org")
        page.get_by_test_id("login-password").fill("not the password at all")
        page.get_by_test_id("login-submit").click()
        wanted = "Wrong email or password." if lang == "en" else catalog("fi", "messages")["Wrong email or password."]
        expect(page.get_by_role("alert")).to_have_text(wanted)
        expect(page.get_by_test_id("logout")).to_have_count(0)
    # The Finnish page is Finnish throughout.
    expect(page.get_by_test_id("login-submit")).to_have_text(catalog("fi", "messages")["Sign in"])
    assert "Väärä sähköpostiosoite tai salasana." == wanted


def test_language_switcher_sets_the_cookie_signed_out_and_the_account_signed_in(live, new_page):
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    page = new_page()
    page.goto(live.url + "/console")
    page.get_by_label("Language").select_option("sv")
    expect(page.locator("html")).to_have_attribute("lang", "sv")
    expect(page.get_by_test_id("login-submit")).to_have_text("Logga in")
    cookie = next(c for c in page.context.cookies() if c["name"] == "jutella_lang")
    assert cookie["value"] == "sv" and cookie["sameSite"] == "Lax" and cookie["path"] == "/"

    sign_in_page(page, live, "aino@example.org")
    page.get_by_label("Språk").select_option("fi")
    expect(page.locator("html")).to_have_attribute("lang", "fi")
    expect(page.get_by_test_id("logout")).to_have_text("Kirjaudu ulos")

    async def language():
        async with live.rt.db.reader() as s:
            from jutella.store.models import StaffAccount
            from sqlalchemy import select
            return (await s.execute(select(StaffAccount.language))).scalar_one()
    assert live.call(language) == "fi"


def test_a_used_set_up_link_shows_the_reason_and_no_form(live, new_page):
    link = live.call(actions.ensure_setup_link, live.rt)
    token = link.split("#token=")[1]
    r = live.client().post("/api/v1/public/staff/setup", json={
        "token": token, "email": "aino@example.org", "name": "Aino", "password": PASSWORD})
    assert r.status_code == 200, r.text
    for locale in ("en-GB", "fi-FI"):
        page = new_page(locale=locale)
        page.goto(link)
        alert = page.get_by_role("alert")
        expect(alert).to_have_text(re.compile("already been used|on jo käytetty"))
        expect(page.locator("form")).to_have_count(0)
        expect(page.locator("input[type=password]")).to_have_count(0)


def test_an_agent_sees_no_accounts(live, new_page):
    add_staff(live, "boss@example.org", ["admin"], name="Secret Boss")
    add_staff(live, "eero@example.org", ["agent"], name="Eero")
    page = new_page()
    sign_in_page(page, live, "eero@example.org")
    expect(nav(page, "Conversations")).to_have_attribute("aria-current", "page")  # the agent's start page
    expect(nav(page, "My account")).to_be_visible()
    expect(nav(page, "Accounts")).to_have_count(0)
    expect(nav(page, "Audit log")).to_have_count(0)

    page.goto(live.url + "/console#/accounts")
    expect(page.get_by_test_id("not-allowed")).to_be_visible()
    expect(page.get_by_test_id("accounts-table")).to_have_count(0)
    expect(page.get_by_test_id("account-create")).to_have_count(0)
    content = page.content()
    assert "boss@example.org" not in content and "Secret Boss" not in content


def test_presence_control_changes_state_and_tells_the_page(live, new_page):
    add_staff(live, "eero@example.org", ["agent"])
    page = new_page()
    sign_in_page(page, live, "eero@example.org")
    page.evaluate("""() => { window.presenceEvents = [];
        document.addEventListener('jutella:presence', (e) => window.presenceEvents.push(e.detail.state)); }""")
    control = page.get_by_test_id("presence")
    expect(control).to_have_attribute("data-state", "online")
    control.select_option("away")
    expect(control).to_have_attribute("data-state", "away")
    control.select_option("offline")
    expect(control).to_have_attribute("data-state", "offline")
    assert page.evaluate("window.presenceEvents") == ["away", "offline"]


# -- untrusted text stays text ----------------------------------------------------------------------
def test_hostile_names_are_shown_as_text(live, new_page, watch):
    add_staff(live, "boss@example.org", ["admin"], name="Boss")
    live.call(actions.create_account, live.rt, actor_id=None, email="evil@example.org", name=HOSTILE,
              roles=["agent"], password=PASSWORD)
    sign_in(live, "evil@example.org").close()  # an audit row whose actor is the hostile name

    page = new_page()
    sign_in_page(page, live, "boss@example.org")
    nav(page, "Accounts").click()
    table = page.get_by_test_id("accounts-table")
    expect(table.get_by_text(HOSTILE, exact=True)).to_be_visible()
    nav(page, "Audit log").click()
    audit = page.get_by_test_id("audit-table")
    expect(audit.get_by_text(HOSTILE, exact=True).first).to_be_visible()
    expect(page.get_by_test_id("audit-account").locator("option", has_text=HOSTILE)).to_have_count(1)
    assert page.locator("img").count() == 0
    assert page.evaluate("document.querySelectorAll('[onerror]').length") == 0

    # Filtering by the hostile account shows only its rows.
    page.get_by_test_id("audit-account").select_option(label=HOSTILE)
    page.get_by_role("button", name="Show", exact=True).click()
    expect(page.get_by_test_id("audit-row")).to_have_count(1)
    expect(page.get_by_test_id("audit-row")).to_contain_text("Signed in")

    # The hostile account's own console shows its name as text too.
    own = new_page()
    sign_in_page(own, live, "evil@example.org")
    expect(own.get_by_test_id("signed-in-name")).to_have_text(HOSTILE)
    assert own.locator("img").count() == 0
    watch.check()


# -- the session ends, or two-factor becomes required --------------------------------------------------
def test_an_ended_session_returns_to_sign_in(live, clock, new_page):
    add_staff(live, "boss@example.org", ["admin", "agent"], name="Boss")
    page = new_page()
    sign_in_page(page, live, "boss@example.org")
    # the conversations view (this account is an agent too) has finished its
    # first reads, so the session ends only under the click below
    page.locator(".chat-layout[data-connection=open]").wait_for()
    page.locator(".conv-sections[aria-busy=false]").wait_for()
    clock.advance(minutes=live.rt.settings.session_idle_minutes + 1)
    nav(page, "Accounts").click()
    expect(page.get_by_test_id("login-email")).to_have_value("boss@example.org")
    expect(page.get_by_role("status").filter(has_text="Your session has ended")).to_be_visible()
    # Signing in again returns to where the session ended.
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("accounts-table")).to_be_visible()


def test_required_two_factor_sends_to_my_account(live, clock, new_page):
    add_staff(live, "boss@example.org", ["admin", "agent"], name="Boss")
    page = new_page()
    sign_in_page(page, live, "boss@example.org")
    admin_id = live.call(actions.list_accounts, live.rt)[0].id
    live.call(actions.set_require_totp, live.rt, actor_id=admin_id, value=True)
    nav(page, "Accounts").click()  # the server now refuses with totp_enrollment_required
    expect(page.get_by_test_id("totp-banner")).to_be_visible()
    expect(page).to_have_url(re.compile(r"#/account$"))
    page.get_by_test_id("totp-begin").click()
    secret = page.get_by_test_id("totp-secret").inner_text().strip()
    page.get_by_test_id("totp-code").fill(pyotp.TOTP(secret).at(clock.now()))
    page.get_by_test_id("totp-confirm").click()
    expect(page.get_by_test_id("recovery-codes").locator("li")).to_have_count(10)
    expect(page.get_by_test_id("totp-banner")).to_have_count(0)
    nav(page, "Accounts").click()
    expect(page.get_by_test_id("accounts-table")).to_be_visible()
    expect(page.get_by_test_id("require-totp")).to_be_checked()


# -- accessibility -------------------------------------------------------------------------------------
def test_axe_finds_no_accessibility_problems(live, new_page):
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    add_staff(live, "boss@example.org", ["admin", "agent", "privacy"], name="Boss")
    page = new_page(viewport={"width": 360, "height": 800})
    problems = {}

    def check(name: str) -> None:
        found = axe.run(page).response["violations"]
        if found:
            problems[name] = [(v["id"], [n["target"] for n in v["nodes"]]) for v in found]

    page.goto(live.url + "/console")
    page.get_by_test_id("login-email").fill("boss@example.org")
    page.get_by_test_id("login-password").fill("not the password at all")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_role("alert")).to_be_visible()
    check("sign-in")
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    for route, ready in (("accounts", "accounts-table"), ("audit", "audit-table"), ("account", "totp-begin")):
        page.goto(f"{live.url}/console#/{route}")
        expect(page.get_by_test_id(ready)).to_be_visible()
        check(route)
    page.get_by_test_id("totp-begin").click()
    expect(page.get_by_test_id("totp-qr")).to_be_visible()
    check("two-factor set-up")
    assert problems == {}
