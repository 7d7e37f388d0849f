#!/usr/bin/python3
"""The job service's web page in a real browser (headless Chromium through chromedriver).

Run by scripts/page-test.sh, which starts a service coordinator and two workers and passes its URL:
    page_test.py URL WORKDIR SCREENSHOT SLOW_PLUGIN [AUTH_URL TOKEN]
Checks: the page loads with no console errors, shows a running job's map progress rise to done,
submits a second job through its form and sees it finish, cancels a third with its button, and still
has no console errors at the end. Saves a screenshot. With AUTH_URL (a coordinator started with
--auth-token-file holding TOKEN), the page there asks for the token once and then lists that
coordinator's jobs. Exits 0 when every check holds.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

url, workdir, screenshot = sys.argv[1], sys.argv[2], sys.argv[3]


def api(method, path, body=None, base=url, token=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    if token:
        request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.load(reply)


def wait_until(what, check, limit=20.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting until " + what)


# The page rebuilds its tables every second, so elements are read and clicked in one script each (the
# page's own script can't run in between), never held across calls where they would go stale.
def query(driver, selector, expression):
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? %s : null;" % expression, selector)


def cell_text(driver, job_id, column):
    return query(driver, "#job-%s td.%s" % (job_id, column), "e.textContent")


def state(driver, job_id):
    return query(driver, "#job-" + job_id, "e.dataset.state")


def click(driver, selector):
    if query(driver, selector, "(e.click(), true)") is None:
        raise AssertionError("nothing to click at " + selector)


def severe(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


options = Options()
for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1500"):
    options.add_argument(flag)
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
failures = []
try:
    inputs = sorted(p for p in os.listdir(workdir) if p.startswith("pg-") and p.endswith(".txt"))
    # The workers sleep in every map of the slow plugin, so the first job runs for a few seconds.
    slow = api("POST", "/v1/jobs", {"app": sys.argv[4], "inputs": inputs, "reduce": 2, "name": "slow"})
    driver.get(url + "/")
    wait_until("the page lists the slow job", lambda: state(driver, slow["id"]))
    seen = set()
    def finished():
        text = cell_text(driver, slow["id"], "map")
        if text:
            seen.add(text.strip())
        return state(driver, slow["id"]) == "done"
    wait_until("the slow job is shown done", finished, 60)
    total = len(inputs)
    partial = [s for s in seen if s not in ("0/%d" % total, "%d/%d" % (total, total))]
    print("map progress seen on the page:", sorted(seen))
    if not partial:
        failures.append("the page never showed the map phase part done: %s" % sorted(seen))
    if "%d/%d" % (total, total) not in seen:
        failures.append("the page never showed every map done")

    # A second job through the form.
    driver.find_element(By.ID, "app").send_keys("wc")
    driver.find_element(By.ID, "inputs").send_keys("\n".join(inputs))
    driver.find_element(By.ID, "name").send_keys("from the form")
    driver.find_element(By.ID, "submit-button").click()
    message = wait_until("the form reports the submission",
                         lambda: (lambda t: t if t.startswith("submitted job") else None)(
                             driver.find_element(By.ID, "message").text))
    second = message.split()[-1]
    wait_until("the form's job is shown done", lambda: state(driver, second) == "done", 30)
    if api("GET", "/v1/jobs/" + second)["name"] != "from the form":
        failures.append("the form's job lost its name")

    # A bad submission is refused with the service's reason, and no job appears. Chromium logs the 400
    # itself as a network error: that one entry is expected, any other is not.
    errors = severe(driver)
    if errors:
        failures.append("console errors: %s" % errors)
    before = len(api("GET", "/v1/jobs")["jobs"])
    driver.find_element(By.ID, "inputs").clear()
    driver.find_element(By.ID, "inputs").send_keys("no-such-file.txt")
    driver.find_element(By.ID, "submit-button").click()
    wait_until("the form shows the refusal",
               lambda: "no-such-file.txt" in driver.find_element(By.ID, "message").text)
    if len(api("GET", "/v1/jobs")["jobs"]) != before:
        failures.append("a refused submission made a job")
    errors = [e for e in severe(driver)
              if not (e["source"] == "network" and "/v1/jobs - " in e["message"] and "status of 400" in e["message"])]
    if errors:
        failures.append("console errors: %s" % errors)

    # Cancel a job that never ends with its button.
    hung = api("POST", "/v1/jobs", {"mapper": "sleep 60", "reducer": "cat", "inputs": inputs[:1],
                                    "task_timeout": 2, "max_attempts": 100, "name": "hangs"})
    wait_until("the hung job is running", lambda: state(driver, hung["id"]) == "map")
    click(driver, "#job-%s button.cancel" % hung["id"])
    wait_until("the hung job is shown cancelled", lambda: state(driver, hung["id"]) == "cancelled")
    click(driver, "#job-" + slow["id"])
    wait_until("the slow job's tasks are shown", lambda: "Tasks of job " + slow["id"] in driver.page_source)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(screenshot)
    errors = severe(driver)
    if errors:
        failures.append("console errors: %s" % errors)

    if len(sys.argv) > 6:
        auth_url, token = sys.argv[5], sys.argv[6]
        try:
            api("GET", "/v1/jobs", base=auth_url)
            failures.append("the coordinator with a token answered without it")
        except urllib.error.HTTPError as e:
            if e.code != 401:
                failures.append("without the token: HTTP %d, not 401" % e.code)
        guarded = api("POST", "/v1/jobs", {"app": "wc", "inputs": inputs[:1], "name": "behind a token"},
                      base=auth_url, token=token)
        driver.get(auth_url + "/")
        prompt = WebDriverWait(driver, 10).until(expected_conditions.alert_is_present())
        prompt.send_keys(token)
        prompt.accept()
        wait_until("the page lists the job behind the token", lambda: state(driver, guarded["id"]) == "done", 30)
        # Asked once: the next refreshes send the token without asking again.
        first = int(query(driver, "body", "e.dataset.refreshes || '0'"))
        wait_until("two more refreshes", lambda: int(query(driver, "body", "e.dataset.refreshes || '0'")) >= first + 2,
                   10)
        try:
            driver.switch_to.alert
            failures.append("the page asked for the token a second time")
        except Exception:  # noqa: BLE001 - no alert open is what we want
            print("token prompt: asked once, then the page listed job", guarded["id"], "behind the token")
except Exception as e:  # noqa: BLE001 - any failure is reported with a screenshot
    failures.append("%s: %s" % (type(e).__name__, e))
    try:
        driver.save_screenshot(screenshot)
    except Exception:  # noqa: BLE001
        pass
finally:
    driver.quit()

for f in failures:
    print("FAIL:", f)
print("page test:", "FAILED" if failures else "passed", "- screenshot", screenshot)
sys.exit(1 if failures else 0)
