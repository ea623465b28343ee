"""Site profiles in Chromium (docs/sites.md): an administrator tries a colour
that text would not read on and is told why, then saves a darker one; the
widget embedded on that site's pages shows its colour, launcher (left, with
its label), header, greeting and only its departments, while a page of
another allowed origin (JUTELLA_ALLOWED_ORIGINS) gets the default look with
every department. axe finds nothing serious on the console's editor or the
profiled widget. Screenshots to $SHOTS_DIR when set (1280x800 and 390x844,
the console and the site's widget in Finnish, the widgets in English)."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from jutella.chat import departments as D
from jutella.chat import sites

from tests.browser.test_departments_browser import console_sign_in
from tests.browser.test_offline_browser import axe_problems, frame_of
from tests.browser.test_widget_browser import HostSite, host_html
from tests.helpers import add_staff, put_on_duty

pytestmark = pytest.mark.browser

GREEN = "#0b6e4f"  # white text on it: 6.3:1


@pytest.fixture
def backend():
    return "sqlite"


@pytest.fixture(autouse=True)
def _template_before_browser(sqlite_template):
    """Migrate the SQLite template before Playwright owns the event loop."""


@pytest.fixture
def hosts():
    pair = HostSite(), HostSite()
    yield pair
    for h in pair:
        h.close()


@pytest.fixture
def settings_overrides(hosts):
    return {"allowed_origins": [hosts[1].origin]}  # the second: from the setting, the default look


def shot(page, name, show=None):
    folder = os.environ.get("SHOTS_DIR")
    if folder:
        for w, h in ((1280, 800), (390, 844)):
            page.set_viewport_size({"width": w, "height": h})
            if show is not None:
                show.scroll_into_view_if_needed()
            page.screenshot(path=f"{folder}/{name}-{w}x{h}.png")
        page.set_viewport_size({"width": 1280, "height": 800})


def test_a_site_shows_its_own_look_and_another_origin_the_default(live, hosts, browser_context_factory):
    rt = live.rt
    housing_site, union_site = hosts
    admin = add_staff(live, "ilona@example.org", ["admin", "agent"], name="Ilona")
    depts = []
    for name in ("Asunnot", "Jäsenyys", "Tapahtumat"):
        agent = add_staff(live, f"{name.lower()}@example.org", ["agent"], name=name)
        dept = live.call(D.create, rt, actor_id=None, name=name)
        live.call(D.set_members, rt, actor_id=None, department_id=dept.id, account_ids=[agent])
        put_on_duty(live, agent, f"duty-{name}")
        depts.append(dept.id)
    site = live.call(sites.add_site, rt, actor_id=admin, origin=housing_site.origin, name="Asuntopalvelu")
    live.call(sites.set_profile, rt, actor_id=admin, site_id=site.id, colour=None, position="left",
              departments=depts[:2], texts={
                  "launcher": {"fi": "Kysy asunnoista", "en": "Ask about housing"},
                  "header": {"fi": "Asuntopalvelu", "en": "Housing service"},
                  "greeting": {"fi": "Hei! Kysy meiltä vapaista asunnoista.", "en": "Hi! Ask us about free flats."}})

    # the console (in Finnish): a yellow is refused with the reason; a dark green is saved
    console = browser_context_factory(locale="fi-FI").new_page()
    console_sign_in(console, live.url, "ilona@example.org")
    console.goto(live.url + "/console#/embed")
    row = console.locator(f"[data-testid=site][data-origin='{housing_site.origin}']")
    row.get_by_test_id("site-edit").click()
    editor = console.get_by_test_id("profile-editor")
    expect(editor.get_by_test_id("profile-greeting-fi")).to_have_value("Hei! Kysy meiltä vapaista asunnoista.")
    editor.get_by_test_id("profile-colour").fill("#ffeb3b")
    editor.get_by_test_id("profile-save").click()
    error = editor.get_by_test_id("profile-colour-error")
    expect(error).to_contain_text("Väri #ffeb3b on liian vaalea")
    expect(error).to_contain_text("3:1")
    expect(editor.get_by_test_id("profile-colour")).to_have_attribute("aria-invalid", "true")
    assert axe_problems(console) == []
    shot(console, "console-site-colour-refused", show=error)
    editor.get_by_test_id("profile-colour").fill(GREEN)
    editor.get_by_test_id("profile-save").click()
    expect(row).to_contain_text("Oma")
    expect(editor.get_by_test_id("profile-colour-error")).to_be_empty()

    # the housing site's page, in Finnish: its colour, launcher, header, greeting and two departments
    page = browser_context_factory().new_page()
    housing_site.pages["/"] = host_html(live.url, lang="fi")
    page.goto(housing_site.origin + "/")
    launcher = page.get_by_test_id("launcher")
    expect(launcher).to_have_text("Kysy asunnoista")
    expect(launcher).to_have_attribute("aria-label", "Kysy asunnoista: Avaa chat")
    expect(launcher).to_have_css("background-color", "rgb(11, 110, 79)")  # once the site's style has loaded
    assert launcher.bounding_box()["x"] < 100  # bottom left
    shot(page, "launcher-site-fi")
    launcher.click()
    w = page.frame_locator("iframe[data-jutella=frame]")
    expect(w.locator(".title")).to_have_text("Asuntopalvelu", timeout=15_000)
    expect(w.locator(".intro")).to_have_text("Hei! Kysy meiltä vapaista asunnoista.")
    expect(w.get_by_test_id("department-option")).to_have_text(["Asunnot", "Jäsenyys"], timeout=15_000)
    expect(w.locator(".head")).to_have_css("background-color", "rgb(11, 110, 79)")
    assert axe_problems(frame_of(page)) == []
    shot(page, "widget-site-fi")

    # the other origin (from the setting), in English: the default look and every department
    other = browser_context_factory().new_page()
    union_site.pages["/"] = host_html(live.url, lang="en")
    other.goto(union_site.origin + "/")
    launcher = other.get_by_test_id("launcher")
    expect(launcher).to_have_attribute("aria-label", "Open chat")
    expect(launcher).to_have_css("background-color", "rgb(31, 95, 191)")
    assert launcher.bounding_box()["x"] > 1000  # bottom right
    launcher.click()
    w2 = other.frame_locator("iframe[data-jutella=frame]")
    expect(w2.get_by_test_id("department-option")).to_have_text(["Asunnot", "Jäsenyys", "Tapahtumat"],
                                                                 timeout=15_000)
    expect(w2.locator(".title")).to_have_text("Chat with us")
    expect(w2.locator(".intro")).to_have_text("Hi! How can we help you?")
    assert axe_problems(frame_of(other)) == []  # each widget profile: the default one too
    shot(other, "widget-default-en")

    # the housing site in English: its English texts
    page.close()
    en = browser_context_factory().new_page()
    housing_site.pages["/en"] = host_html(live.url, lang="en")
    en.goto(housing_site.origin + "/en")
    expect(en.get_by_test_id("launcher")).to_have_text("Ask about housing")
    en.get_by_test_id("launcher").click()
    w3 = en.frame_locator("iframe[data-jutella=frame]")
    expect(w3.locator(".intro")).to_have_text("Hi! Ask us about free flats.", timeout=15_000)
    shot(en, "widget-site-en")


def test_a_site_that_hides_its_launcher_while_closed(live, hosts, clock, browser_context_factory):
    """Issue 18 item 1: the console's "When closed" set to hide; on a
    Saturday (outside the hours) that site's page shows no launcher, the
    setting's origin keeps its own; on Monday at ten it is back."""
    from tests.integration.test_hours import MONDAY_TEN, SATURDAY_NOON, WEEKDAYS
    clock.set(SATURDAY_NOON)
    rt = live.rt
    hidden_site, union_site = hosts
    admin = add_staff(live, "ilona@example.org", ["admin", "agent"], name="Ilona")
    live.call(D.set_hours, rt, actor_id=admin, department_id=None, weekly=WEEKDAYS, exceptions=[])
    live.call(sites.add_site, rt, actor_id=admin, origin=hidden_site.origin, name="Asunnot")

    console = browser_context_factory(locale="fi-FI").new_page()
    console_sign_in(console, live.url, "ilona@example.org")
    console.goto(live.url + "/console#/embed")
    row = console.locator(f"[data-testid=site][data-origin='{hidden_site.origin}']")
    row.get_by_test_id("site-edit").click()
    editor = console.get_by_test_id("profile-editor")
    choice = editor.get_by_test_id("profile-when-closed")
    expect(editor.get_by_label("Kun chat on suljettu")).to_have_count(1)
    choice.select_option("hide")
    editor.get_by_test_id("profile-save").click()
    expect(row).to_contain_text("Oma")
    shot(console, "console-when-closed-fi", show=choice)

    page = browser_context_factory().new_page()
    hidden_site.pages["/"] = host_html(live.url, lang="fi")
    page.goto(hidden_site.origin + "/")
    expect(page.locator("[data-jutella]").first).to_be_attached()
    expect(page.get_by_test_id("launcher")).to_be_hidden()
    other = browser_context_factory().new_page()
    union_site.pages["/"] = host_html(live.url, lang="en")
    other.goto(union_site.origin + "/")
    expect(other.get_by_test_id("launcher")).to_be_visible()

    clock.set(MONDAY_TEN)
    page = browser_context_factory().new_page()  # a new visitor (no cached loader)
    page.goto(hidden_site.origin + "/")
    expect(page.get_by_test_id("launcher")).to_be_visible()
