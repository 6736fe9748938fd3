// The sign-in page of examples/web, driven in headless Chromium (Debian's, by puppeteer-core)
// against the local stack (scripts/test-web serves the page and the API on one origin):
// sign-up with the code from the outbox, the profile, two tabs refreshing at once, logout,
// login with step-up, login by code. A screenshot of each step goes to PHONE_AUTH_SCREENSHOTS.
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { CAPTCHA_STUB_PORT, GOOD_TOKEN, stubProvider } from "../captcha-stub.js";
import { PASSWORD, client, codeSentTo, freshPhone, signUp, smsCount } from "../support.js";

const PAGE_URL = process.env.PHONE_AUTH_PAGE_URL ?? "";
/** The client as the page loads it (serve.mjs serves clients/typescript/dist there). */
const CLIENT = "./client/index.js";
const SCREENSHOTS = process.env.PHONE_AUTH_SCREENSHOTS ?? "build/screenshots";
let browser: Browser;
let shots = 0;

before(async () => {
  if (!PAGE_URL) throw new Error("PHONE_AUTH_PAGE_URL is not set: run the tests with scripts/test-web");
  await mkdir(SCREENSHOTS, { recursive: true });
  browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    // A fresh profile each run; no background traffic (this machine's network is closed).
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    headless: true,
    // A step that hangs fails in seconds, not after puppeteer's three minutes.
    protocolTimeout: 30_000,
  });
});

after(async () => {
  await browser?.close();
});

async function screenshot(page: Page, name: string): Promise<void> {
  shots++;
  await page.screenshot({ path: join(SCREENSHOTS, `${String(shots).padStart(2, "0")}-${name}.png`), fullPage: true });
}

/** The step on show, once the page has settled on one. */
async function visibleStep(page: Page, id: string): Promise<void> {
  await page.waitForSelector(`#${id}:not([hidden])`, { timeout: 15_000 });
}

let current = "start";
/** Names the step under way, for the failure's message. */
function step(name: string): void {
  current = name;
}

async function submit(page: Page, form: string, fields: Record<string, string>): Promise<void> {
  for (const [name, value] of Object.entries(fields)) {
    const input = `#${form} [name=${name}]`;
    await page.$eval(input, (element) => ((element as HTMLInputElement).value = ""));
    await page.type(input, value);
  }
  await page.click(`#${form} button[type=submit]`);
}

const statusText = (page: Page) => page.$eval("#status", (element) => element.textContent ?? "");
const text = (page: Page, selector: string) => page.$eval(selector, (element) => element.textContent ?? "");

test("sign-up, profile, two tabs, logout, login with step-up and by code, in Chromium", async () => {
  const problems: string[] = [];
  try {
    await walkThrough(problems);
  } catch (error) {
    throw new Error(`at "${current}": ${String(error)}${problems.map((problem) => `\n  ${problem}`).join("")}`, { cause: error });
  }
});

async function walkThrough(problems: string[]): Promise<void> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  const watch = (tab: Page, name: string) => {
    tab.on("pageerror", (error) => problems.push(`${name}: ${String(error)}`));
    tab.on("console", (message) => {
      if (message.type() === "error") problems.push(`${name} console: ${message.text()}`);
    });
  };
  watch(page, "first tab");
  const refreshes: string[] = [];
  const countRefreshes = (tab: Page, name: string) =>
    tab.on("request", (request) => {
      if (request.url().includes("/auth/refresh")) refreshes.push(name);
      if (process.env.DEBUG_REQUESTS) console.error(name, request.method(), request.url());
    });
  countRefreshes(page, "first tab");
  const phone = freshPhone();

  step("sign-up");
  // Sign-up: the number, the code from the SMS outbox, the account.
  await page.goto(PAGE_URL);
  await visibleStep(page, "phone-step");
  await screenshot(page, "phone");
  await submit(page, "phone-step", { phone });
  await visibleStep(page, "code-step");
  assert.equal(await statusText(page), "We sent you a code by SMS.");
  await submit(page, "code-step", { code: await codeSentTo(phone) });
  await visibleStep(page, "register-step");
  await screenshot(page, "register");
  await submit(page, "register-step", { first_name: "Sara", last_name: "Ahmadi", email: "sara@example.com", password: PASSWORD });
  await visibleStep(page, "profile-step");
  await screenshot(page, "profile");
  assert.equal(await text(page, "#profile-phone"), phone);
  assert.equal(await text(page, "#profile-name"), "Sara Ahmadi");
  assert.equal(await page.$$eval("#sessions li", (items) => items.length), 1);

  step("second tab");
  // A second tab shares the session (IndexedDB) and opens on the profile.
  const second = await context.newPage();
  countRefreshes(second, "second tab");
  watch(second, "second tab");
  await second.goto(PAGE_URL);
  await visibleStep(second, "profile-step");
  assert.equal(await text(second, "#profile-phone"), phone);

  step("two tabs refresh");
  // Both tabs find the access token about to expire at the same moment: one refreshes (Web
  // Locks), the other takes the new pair. The stack ends a session whose refresh token is
  // presented twice (no grace), so two refreshes would sign both out.
  await page.evaluate(async (client) => {
    const store = (await import(client)).indexedDbStore();
    await store.set({ ...(await store.get()), expiresAt: Date.now() });
  }, CLIENT);
  const at = Date.now() + 500;
  const profileAt = (tab: Page) =>
    tab.evaluate(async (start) => {
      await new Promise((resolve) => setTimeout(resolve, start - Date.now()));
      const auth = (window as unknown as { phoneAuth: { getProfile(): Promise<{ phone: string }> } }).phoneAuth;
      return (await auth.getProfile()).phone;
    }, at);
  assert.deepEqual(await Promise.all([profileAt(page), profileAt(second)]), [phone, phone]);
  assert.equal(refreshes.length, 1, `refresh requests: ${refreshes.join(", ")}`);
  assert.ok(await page.evaluate(() => "locks" in navigator), "Chromium has Web Locks");

  step("logout");
  // Logout ends the session for both tabs. (A tab in the background gets no animation
  // frames, which puppeteer's clicks wait for.)
  await page.bringToFront();
  await page.click("#logout");
  await visibleStep(page, "phone-step");
  assert.equal(await statusText(page), "You are signed out.");
  await screenshot(page, "logged-out");
  assert.equal(await page.evaluate(async (client) => (await import(client)).indexedDbStore().get(), CLIENT), null);
  // The second tab finds the session gone at its next call and says so.
  await second.bringToFront();
  const kind = await second.evaluate(() =>
    (window as unknown as { phoneAuth: { getProfile(): Promise<unknown> } }).phoneAuth.getProfile().then(
      () => "still signed in",
      (error: { kind: string }) => error.kind,
    ),
  );
  assert.equal(kind, "signed_out");
  await visibleStep(second, "phone-step");
  assert.equal(await statusText(second), "You are signed out.");
  await second.close();
  await page.bringToFront();

  step("login with step-up");
  // Login: two wrong passwords, then the right one asks for the SMS code (step-up).
  await submit(page, "phone-step", { phone });
  await visibleStep(page, "password-step");
  await screenshot(page, "password");
  for (let i = 0; i < 2; i++) {
    await submit(page, "password-step", { password: "not the password" });
    await page.waitForFunction(() => document.querySelector("#status")?.textContent === "Invalid phone number or password.");
  }
  const sent = await smsCount(phone);
  await submit(page, "password-step", { password: PASSWORD });
  await page.waitForSelector("#step-up:not([hidden])");
  assert.equal(await statusText(page), "For your security, enter the code we just sent you by SMS.");
  await screenshot(page, "step-up");
  await submit(page, "password-step", { password: PASSWORD, code: await codeSentTo(phone, sent) });
  await visibleStep(page, "profile-step");
  await screenshot(page, "logged-in");
  assert.equal(await text(page, "#profile-phone"), phone);

  step("login by code");
  // Login by code, for another account (this one's login codes wait out the step-up code's
  // resend cooldown).
  const other = (await signUp(client())).phone;
  await page.click("#logout");
  await visibleStep(page, "phone-step");
  await submit(page, "phone-step", { phone: other });
  await visibleStep(page, "password-step");
  const before = await smsCount(other);
  await page.click("#use-code");
  await visibleStep(page, "code-step");
  await screenshot(page, "login-code");
  await submit(page, "code-step", { code: await codeSentTo(other, before) });
  await visibleStep(page, "profile-step");
  assert.equal(await text(page, "#profile-phone"), other);
  await screenshot(page, "logged-in-by-code");
  await context.close();
}

test("under pressure the page shows the bot check's widget and sends its token", { skip: !CAPTCHA_STUB_PORT && "PHONE_AUTH_CAPTCHA_STUB_PORT is not set" }, async () => {
  // scripts/test-web serves the page with CAPTCHA_PROVIDER=turnstile, CAPTCHA_SITE_KEY and the
  // stub's widget script; the stack asks for the check once a range has had 2 of its 4 codes.
  const provider = await stubProvider();
  const context = await browser.createBrowserContext();
  try {
    const range = freshPhone().slice(0, -4);
    for (let i = 0; i < 2; i++) await client().checkPhone({ phone: freshPhone(range) });
    const page = await context.newPage();
    await page.goto(PAGE_URL);
    await visibleStep(page, "phone-step");
    const phone = freshPhone(range);
    await submit(page, "phone-step", { phone });
    await page.waitForSelector("#captcha:not([hidden]) #stub-captcha");
    assert.equal(await statusText(page), "Please confirm you are not a robot.");
    assert.equal(await page.$eval("#stub-captcha", (button) => (button as HTMLElement).dataset.sitekey), "test-site-key");
    assert.deepEqual(provider.tokens, [], "nothing verified before the widget is solved");
    await screenshot(page, "captcha");
    await page.click("#stub-captcha");
    await visibleStep(page, "code-step");
    assert.deepEqual(provider.tokens, [GOOD_TOKEN]);
    assert.ok(await codeSentTo(phone), "the code went out once the check passed");
  } finally {
    await context.close();
    await provider.close();
  }
});
