// The parts that need no service: error kinds, the stores, WebOTP outside a browser.
import assert from "node:assert/strict";
import { test } from "node:test";
import { localStorageStore, memoryStore, webOtp, webOtpSupported } from "../src/index.js";
import { errorFromResponse } from "../src/errors.js";

test("refusals map to kinds by status and flags", () => {
  const kind = (status: number, body: object, headers: Record<string, string> = {}, codeRoute = false) =>
    errorFromResponse(status, body, new Headers(headers), codeRoute).kind;
  assert.equal(kind(400, { error: "x", captcha_required: true }), "captcha_required");
  assert.equal(kind(401, { error: "x", code_required: true, verification_id: "v" }), "code_required");
  assert.equal(kind(400, { error: "Incorrect OTP.", attempts_left: 2 }, {}, true), "code_refused");
  assert.equal(kind(400, { error: "No active OTP for this phone number. Request a new code." }, {}, true), "code_refused");
  assert.equal(kind(400, { error: "Invalid phone number." }, {}, true), "bad_request");
  assert.equal(kind(401, { error: "Invalid or expired token." }, { "www-authenticate": "Bearer" }), "signed_out");
  assert.equal(kind(401, { error: "Invalid phone number or password." }), "wrong_credentials");
  assert.equal(kind(403, { error: "x", login_required: true }), "login_required");
  assert.equal(kind(403, { error: "x", disabled: true }), "disabled");
  assert.equal(kind(403, { error: "x", retry_after: 10 }), "blocked");
  assert.equal(kind(409, { error: "x" }), "phone_taken");
  assert.equal(kind(429, { message: "Too Many Requests" }), "rate_limited");
  assert.equal(kind(503, { error: "x", retry_after: 1 }), "unavailable");
  const throttled = errorFromResponse(429, { error: "wait", retry_after: 42 }, new Headers(), false);
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
