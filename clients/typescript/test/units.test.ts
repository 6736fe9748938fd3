// The parts that need no service: error kinds, the stores, WebOTP outside a browser.
import assert from "node:assert/strict";
import { test } from "node:test";
import { localStorageStore, memoryStore, webOtp, webOtpSupported } from "../src/index.js";
import { errorFromResponse, type RouteKind } from "../src/errors.js";

test("refusals map to kinds by status and flags", () => {
  const kind = (status: number, body: object, headers: Record<string, string> = {}, route: RouteKind = "other") =>
    errorFromResponse(status, body, new Headers(headers), route).kind;
  assert.equal(kind(400, { error: "x", captcha_required: true }), "captcha_required");
  assert.equal(kind(401, { error: "x", code_required: true, verification_id: "v" }), "code_required");
  assert.equal(kind(400, { error: "Incorrect OTP.", attempts_left: 2 }, {}, "code"), "code_refused");
  assert.equal(kind(400, { error: "No active OTP for this phone number. Request a new code." }, {}, "code"), "code_refused");
  assert.equal(kind(400, { error: "Invalid phone number." }, {}, "code"), "bad_request");
  assert.equal(kind(401, { error: "Invalid or expired token." }, { "www-authenticate": "Bearer" }), "signed_out");
  assert.equal(kind(401, { error: "Invalid phone number or password." }), "wrong_credentials");
  assert.equal(kind(403, { error: "x", login_required: true }), "login_required");
  assert.equal(kind(403, { error: "x", disabled: true }), "disabled");
  assert.equal(kind(403, { error: "x", retry_after: 10 }), "blocked");
  assert.equal(kind(403, { error: "Invalid, expired or already used registration token." }, {}, "register"), "registration_expired");
  assert.equal(kind(409, { error: "This phone number is already registered." }), "phone_taken");
  assert.equal(kind(409, { error: "The account changed meanwhile; try again." }), "conflict");
  assert.equal(kind(429, { message: "Too Many Requests" }), "rate_limited");
  assert.equal(kind(503, { error: "x", retry_after: 1 }), "unavailable");
  const throttled = errorFromResponse(429, { error: "wait", retry_after: 42 }, new Headers());
  assert.deepEqual([throttled.retryAfter, throttled.message], [42, "wait"]);
  const gateway = errorFromResponse(503, { message: "Service Unavailable" }, new Headers({ "retry-after": "7" }));
  assert.equal(gateway.retryAfter, 7);
});

test("the localStorage store keeps the pair as JSON and reads a corrupt entry as no session", async () => {
  const entries = new Map<string, string>();
  const storage = {
    getItem: (key: string) => entries.get(key) ?? null,
    setItem: (key: string, value: string) => void entries.set(key, value),
    removeItem: (key: string) => void entries.delete(key),
  };
  const store = localStorageStore("key", storage);
  assert.equal(store.shared, true);
  const tokens = { access: "a", refresh: "r", expiresAt: 1 };
  await store.set(tokens);
  assert.deepEqual(await store.get(), tokens);
  entries.set("key", "{not json");
  assert.equal(await store.get(), null);
  await store.set(null);
  assert.equal(entries.has("key"), false);
  assert.equal(memoryStore().shared, undefined);
});

test("WebOTP is unsupported outside a browser and resolves to null", async () => {
  assert.equal(webOtpSupported(), false);
  assert.equal(await webOtp(), null);
});

test("the template's CorsAllowedOrigins takes https origins (http for localhost) and no wildcard", async () => {
  const { readFile } = await import("node:fs/promises");
  const template = await readFile(new URL("../../../../template.yaml", import.meta.url), "utf8");
  const parameter = template.slice(template.indexOf("\n  CorsAllowedOrigins:"));
  const pattern = new RegExp(/AllowedPattern: '(.*)'/.exec(parameter)![1]!);
  for (const allowed of ["", "https://app.example.com", "https://app.example.com,https://www.example.com:8443", "http://localhost:9001"]) {
    assert.ok(pattern.test(allowed), `refused ${allowed}`);
  }
  for (const refused of ["*", "https://*", "http://*", "https://*.example.com", "http://app.example.com", "https://app.example.com/", "https://a.example.com, https://b.example.com"]) {
    assert.ok(!pattern.test(refused), `accepted ${refused}`);
  }
});
