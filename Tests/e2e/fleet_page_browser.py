#!/usr/bin/env python3
"""Drives ground-control's fleet page in headless Chromium (Debian's chromium +
chromium-driver, through python3-selenium) and prints, as one JSON object, what a person
would see. The caller (gc_fleet_page.sh) checks the values.

    fleet_page_browser.py BASE_URL USER PASSWORD OUT_DIR [SATELLITE]

Steps: open BASE_URL/ui/ without a session (must land on the login form), sign in through
the form, read the overview (counters, each satellite's state text, each group's images),
save a screenshot of it as OUT_DIR/overview.png, open SATELLITE's detail page from its
link (read the summary, desired images, reported images, heartbeats; screenshot
OUT_DIR/detail.png), then log out with the button and check the overview is closed again.

Chromium gets a dead proxy (127.0.0.1:9) for everything but loopback, so it sends nothing
off this machine.
"""
import json
import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def browser(out_dir):
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--window-size=1280,1000", "--user-data-dir=" + os.path.join(out_dir, "profile"),
        "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-default-apps",
        "--disable-domain-reliability", "--disable-client-side-phishing-detection",
        "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
        "--metrics-recording-only", "--proxy-server=http://127.0.0.1:9",
    ]:
        options.add_argument(arg)
    service = Service(
        executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"),
        log_path=os.path.join(out_dir, "chromedriver.log"),
    )
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    return driver


def settle(driver, condition, seconds=20):
    """Waits until a click's navigation has landed (condition true); the caller's checks
    then say what went wrong if it never does."""
    try:
        WebDriverWait(driver, seconds, poll_frequency=0.1).until(lambda d: condition(d))
    except TimeoutException:
        pass


def texts(driver, selector):
    return [e.text.strip() for e in driver.find_elements(By.CSS_SELECTOR, selector)]


def main():
    base, user, password, out_dir = sys.argv[1:5]
    satellite = sys.argv[5] if len(sys.argv) > 5 else None
    seen = {}
    driver = browser(out_dir)
    try:
        # Without a session: the login form.
        driver.get(base + "/ui/")
        seen["unauthenticated_url"] = driver.current_url
        seen["login_form"] = len(driver.find_elements(By.CSS_SELECTOR, "form#login input[name=password]")) == 1

        # A wrong password first: the form says so and no session starts.
        driver.find_element(By.ID, "username").send_keys(user)
        driver.find_element(By.ID, "password").send_keys("not-the-password")
        driver.find_element(By.ID, "sign-in").click()
        settle(driver, lambda d: d.find_elements(By.ID, "login-error"))
        seen["wrong_password_message"] = " ".join(texts(driver, "#login-error"))

        driver.find_element(By.ID, "username").clear()
        driver.find_element(By.ID, "username").send_keys(user)
        driver.find_element(By.ID, "password").send_keys(password)
        driver.find_element(By.ID, "sign-in").click()
        settle(driver, lambda d: d.find_elements(By.ID, "counters"))
        seen["after_login_url"] = driver.current_url
        seen["cookies"] = [
            {k: c.get(k) for k in ("name", "httpOnly", "sameSite", "path", "secure")} for c in driver.get_cookies()
        ]
        seen["title"] = driver.title
        seen["counters"] = {
            e.get_attribute("id").removeprefix("count-"): e.find_element(By.TAG_NAME, "b").text
            for e in driver.find_elements(By.CSS_SELECTOR, "#counters .counter")
        }
        seen["satellites"] = {
            row.get_attribute("data-satellite"): row.find_element(By.CSS_SELECTOR, ".badge").text
            for row in driver.find_elements(By.CSS_SELECTOR, "#satellites tr[data-satellite]")
        }
        seen["groups"] = {
            row.get_attribute("data-group"): [li.text for li in row.find_elements(By.CSS_SELECTOR, "li")]
            for row in driver.find_elements(By.CSS_SELECTOR, "#group-table tr[data-group]")
        }
        seen["overview_text"] = driver.find_element(By.TAG_NAME, "main").text
        driver.save_screenshot(os.path.join(out_dir, "overview.png"))

        if satellite:
            driver.find_element(By.CSS_SELECTOR, f'#satellites tr[data-satellite="{satellite}"] a').click()
            settle(driver, lambda d: d.find_elements(By.ID, "satellite-name"))
            detail = {"url": driver.current_url}
            detail["heading"] = " ".join(texts(driver, "#satellite-name"))
            detail["summary"] = {
                dt.text: dd.text
                for dt, dd in zip(
                    driver.find_elements(By.CSS_SELECTOR, "#summary dt"),
                    driver.find_elements(By.CSS_SELECTOR, "#summary dd"),
                )
            }
            detail["desired"] = texts(driver, "#desired li")
            detail["missing"] = texts(driver, '#desired li[data-missing="true"] code')
            detail["images"] = texts(driver, "#images tbody tr td:first-child")
            detail["heartbeats"] = [
                [td.text for td in row.find_elements(By.TAG_NAME, "td")]
                for row in driver.find_elements(By.CSS_SELECTOR, "#heartbeats tbody tr")
            ]
            driver.save_screenshot(os.path.join(out_dir, "detail.png"))
            seen["detail"] = detail

        driver.find_element(By.ID, "logout").click()
        settle(driver, lambda d: d.find_elements(By.ID, "login"))
        seen["after_logout_url"] = driver.current_url
        driver.get(base + "/ui/")
        seen["after_logout_overview_url"] = driver.current_url
    finally:
        driver.quit()
    json.dump(seen, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
