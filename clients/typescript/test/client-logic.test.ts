// The client's own logic where the real service cannot easily be made to answer so (a disabled
// account, a refresh answered after a logout, a slow captcha): a scripted fetch plays the API.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AuthClient, AuthError, memoryStore, type StoredTokens } from "../src/index.js";

type Reply = { status: number; body?: unknown; headers?: Record<string, string> };
const BASE = "https://auth.example.com";
const pair = (n: number) => ({ access: `access-${n}`, refresh: `refresh-${n}`, token_type: "Bearer", expires_in: 900 });
const invalidToken: Reply = { status: 401, body: { error: "Invalid or expired token." }, headers: { "www-authenticate": 'Bearer error="invalid_token"' } };

/** A fetch that answers each request with `respond` and records `METHOD path [token]`. */
function scripted(respond: (request: string, body: Record<string, unknown>) => Reply | Promise<Reply>) {
  const requests: string[] = [];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const url = new URL(String(input));
    const token = new Headers(init?.headers).get("authorization")?.replace("Bearer ", "");
    const request = `${init?.method ?? "GET"} ${url.origin === BASE ? url.pathname : url.href}${token ? ` ${token}` : ""}`;
    requests.push(request);
    const reply = await respond(request, init?.body ? JSON.parse(String(init.body)) : {});
    return new Response(reply.body === undefined ? null : JSON.stringify(reply.body), { status: reply.status, headers: reply.headers });
  };
  return { fetch, requests };
}

function signedIn(fetch: typeof globalThis.fetch, reasons: string[], extra: Partial<ConstructorParameters<typeof AuthClient>[0]> = {}) {
  const store = memoryStore({ access: "access-0", refresh: "refresh-0", expiresAt: Date.now() + 900_000 } satisfies StoredTokens);
  return { store, auth: new AuthClient({ baseUrl: BASE, store, fetch, onSignedOut: (reason) => reasons.push(reason), ...extra }) };
}

/** An API whose refresh answers (with `pair(1)`) only once `answerRefresh` is called; other requests get `other`. */
function heldRefresh(other: Reply) {
  let answerRefresh!: () => void;
  const held = new Promise<void>((resolve) => (answerRefresh = resolve));
  const api = scripted(async (request) => {
    if (!request.startsWith("POST /auth/refresh/")) return other;
    await held;
    return { status: 200, body: { tokens: pair(1) } };
  });
  return { api, answerRefresh };
}

test("a refresh answered after the logout does not bring the session back", async () => {
  const { api, answerRefresh } = heldRefresh({ status: 204 });
  const reasons: string[] = [];
  const { auth, store } = signedIn(api.fetch, reasons);
  const refreshing = auth.refresh();
  await auth.logout();
  answerRefresh();
  await assert.rejects(refreshing, (error: AuthError) => error.kind === "signed_out");
  assert.equal(await store.get(), null);
  assert.deepEqual(reasons, ["logout"]);
});

test("a login while a refresh of the old session is in flight keeps the login's pair", async () => {
  const { api, answerRefresh } = heldRefresh({ status: 200, body: { message: "Login successful.", tokens: pair(2) } });
  const { auth, store } = signedIn(api.fetch, []);
  const refreshing = auth.refresh();
  await auth.login({ phone: "09101234567", password: "p" });
  answerRefresh();
  assert.equal((await refreshing).refresh, "refresh-2");
  assert.equal((await store.get())!.refresh, "refresh-2");
});

test("a disabled account signs out once, whoever notices", async () => {
  const disabled: Reply = { status: 403, body: { error: "This account is disabled.", disabled: true } };
  const api = scripted(() => disabled);
  const reasons: string[] = [];
  const { auth, store } = signedIn(api.fetch, reasons);
  await assert.rejects(auth.getProfile(), (error: AuthError) => error.kind === "disabled");
  assert.ok(await store.get(), "a refused call keeps the session: the refresh decides");
  await assert.rejects(auth.refresh(), (error: AuthError) => error.kind === "signed_out");
  await auth.logout();
  assert.deepEqual(reasons, ["session_ended"]);
});

test("a gateway's 403 on refresh is not a sign-out", async () => {
  const api = scripted(() => ({ status: 403, body: { message: "Forbidden" } }));
  const { auth, store } = signedIn(api.fetch, []);
  await assert.rejects(auth.refresh(), (error: AuthError) => error.kind === "blocked");
  assert.ok(await store.get());
});

test("a session dropped by another holder of the store is reported once", async () => {
  const api = scripted(() => ({ status: 200, body: {} }));
  const reasons: string[] = [];
  const { auth, store } = signedIn(api.fetch, reasons);
  await auth.getProfile();
  await store.set(null); // another tab logged out
  await assert.rejects(auth.getProfile(), (error: AuthError) => error.kind === "signed_out");
  await assert.rejects(auth.listSessions(), (error: AuthError) => error.kind === "signed_out");
  assert.deepEqual(reasons, ["session_ended"]);
});

test("a captcha solved after the access token fell due is sent with a refreshed token", async () => {
  let now = Date.now();
  const api = scripted((request, body) => {
    if (request.startsWith("POST /auth/refresh/")) return { status: 200, body: { tokens: pair(1) } };
    if (!body.captcha_token) return { status: 400, body: { error: "Complete the captcha.", captcha_required: true } };
    return request.endsWith("access-1") ? { status: 200, body: { message: "sent" } } : invalidToken;
  });
  const reasons: string[] = [];
  const { auth } = signedIn(api.fetch, reasons, {
    now: () => now,
    captcha: async () => {
      now += 900_000; // the user took a quarter of an hour
      return "solved";
    },
  });
  await auth.requestPhoneChange({ new_phone: "09121234567", password: "p" });
  assert.deepEqual(api.requests, [
    "POST /auth/phone/change/request/ access-0",
    "POST /auth/refresh/",
    "POST /auth/phone/change/request/ access-1",
  ]);
  assert.deepEqual(reasons, []);
});

test("authorizedFetch sends the token only to the allowed origins, and retries a 401 once", async () => {
  const api = scripted((request) => {
    if (request.startsWith("POST /auth/refresh/")) return { status: 200, body: { tokens: pair(1) } };
    return request.endsWith("access-1") ? { status: 200, body: {} } : { status: 401 };
  });
  const { auth } = signedIn(api.fetch, [], { tokenOrigins: ["https://api.example.com"] });
  const response = await auth.authorizedFetch("https://api.example.com/orders");
  assert.equal(response.status, 200);
  assert.deepEqual(api.requests, [
    "GET https://api.example.com/orders access-0",
    "POST /auth/refresh/",
    "GET https://api.example.com/orders access-1",
  ]);
  await assert.rejects(auth.authorizedFetch("https://elsewhere.example.net/"), TypeError);
  assert.equal(api.requests.length, 3, "nothing was sent elsewhere");
});
