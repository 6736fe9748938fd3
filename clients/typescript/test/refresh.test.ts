// Refresh: before expiry, one request however many callers need it, and reuse detection
// answered by signing out. The stack of scripts/test-web has REFRESH_REUSE_GRACE_SECONDS=0, so
// any refresh token presented twice ends its session: two refreshes in flight would.
import assert from "node:assert/strict";
import { test } from "node:test";
import { memoryStore } from "../src/index.js";
import { client, countingFetch, refusal, signUp } from "./support.js";

test("the access token is refreshed before it expires, once for many calls at once", async () => {
  let now = Date.now();
  const counting = countingFetch();
  const store = memoryStore();
  const auth = client({ store, fetch: counting.fetch, now: () => now });
  await signUp(auth);
  const before = await store.get();

  // Within the margin (60 s) of the access token's expiry.
  now = before!.expiresAt - 30_000;
  counting.requests.length = 0;
  const calls = [
    ...Array.from({ length: 8 }, () => auth.getProfile()),
    ...Array.from({ length: 4 }, () => auth.listSessions()),
    auth.accessToken(),
  ];
  await Promise.all(calls);

  const refreshes = counting.requests.filter((request) => request === "POST /auth/refresh/");
  assert.equal(refreshes.length, 1, counting.requests.join("\n"));
  assert.equal(counting.requests.length, 13, "the twelve calls and the one refresh");
  const after = await store.get();
  assert.notEqual(after!.refresh, before!.refresh, "rotated");
  assert.equal(await auth.accessToken(), after!.access, "no further refresh while the new token is fresh");
  assert.equal(counting.requests.length, 13);
});

test("refresh() from many callers at once makes one request, and the session lives on", async () => {
  const counting = countingFetch();
  const auth = client({ fetch: counting.fetch });
  await signUp(auth);
  counting.requests.length = 0;
  const pairs = await Promise.all(Array.from({ length: 10 }, () => auth.refresh()));
  assert.equal(new Set(pairs.map((pair) => pair.refresh)).size, 1, "everyone got the same pair");
  assert.deepEqual(counting.requests, ["POST /auth/refresh/"]);
  await auth.refresh();
  await auth.getProfile();
});

test("a refresh token used twice ends the session, and both holders are signed out", async () => {
  const reasons: string[] = [];
  const store = memoryStore();
  const victim = client({ store, onSignedOut: (reason) => reasons.push(`victim ${reason}`) });
  await signUp(victim);

  // A copy of the victim's tokens (stolen, or a second process with its own store) is spent first.
  const thief = client({ store: memoryStore(await store.get()), onSignedOut: (reason) => reasons.push(`thief ${reason}`) });
  await thief.refresh();
  await thief.getProfile();

  // The victim presents the spent token: the service ends the session; the client signs out.
  const reuse = await refusal(victim.refresh());
  assert.deepEqual([reuse.kind, reuse.status], ["signed_out", 401]);
  assert.equal(await store.get(), null);

  // The session is over for the thief's fresh pair too.
  const ended = await refusal(thief.refresh());
  assert.equal(ended.kind, "signed_out");
  assert.deepEqual(reasons, ["victim session_ended", "thief session_ended"]);
});

test("an access token the service refuses is refreshed once and the call retried", async () => {
  const counting = countingFetch();
  const store = memoryStore();
  const auth = client({ store, fetch: counting.fetch });
  await signUp(auth);
  const kept = await store.get();
  // A token that still looks fresh here but that the service refuses (its signature broken).
  await store.set({ ...kept!, access: `${kept!.access.slice(0, -4)}AAAA` });
  counting.requests.length = 0;
  await auth.getProfile();
  assert.deepEqual(counting.requests, ["GET /auth/profile/", "POST /auth/refresh/", "GET /auth/profile/"]);
});
