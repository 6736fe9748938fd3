// What the client's tests share: the local stack's URL and SMS outbox (set by scripts/test-web),
// fresh numbers, codes read from the outbox, and a fetch that counts requests.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { randomInt } from "node:crypto";
import { AuthClient, AuthError, type ClientOptions } from "../src/index.js";

export const API_URL = required("PHONE_AUTH_API_URL");
const OUTBOX = required("PHONE_AUTH_SMS_OUTBOX");
export const PASSWORD = "a long enough passphrase 4 tests";

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with scripts/test-web`);
  return value;
}

/**
 * A mobile number no other test uses: Iranian (the stack's default region), in one of 10,000
 * ranges (the number without its last 4 digits), so that no range nears its send budget.
 */
export function freshPhone(range = `+9891${randomInt(0, 10)}${randomInt(0, 1000).toString().padStart(3, "0")}`): string {
  return `${range}${randomInt(0, 10000).toString().padStart(4, "0")}`;
}

/** The code of the last SMS sent to `phone`, waiting for it to arrive (the outbox is appended to). */
export async function codeSentTo(phone: string, sentAfter = 0): Promise<string> {
  for (let tries = 0; tries < 100; tries++) {
    const lines = (await readFile(OUTBOX, "utf8").catch(() => "")).split("\n").filter(Boolean);
    const sms = lines.map((line) => JSON.parse(line) as { to: string; body: string }).filter((sms) => sms.to === phone);
    if (sms.length > sentAfter) {
      const code = sms.at(-1)!.body.split(/[^0-9]+/).find((run) => run.length === 6);
      if (code) return code;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no SMS to ${phone} in ${OUTBOX}`);
}

/** How many SMS went to `phone` so far. */
export async function smsCount(phone: string): Promise<number> {
  const text = await readFile(OUTBOX, "utf8").catch(() => "");
  return text.split("\n").filter((line) => line && (JSON.parse(line) as { to: string }).to === phone).length;
}

/** The `AuthError` that `promise` rejects with. */
export async function refusal(promise: Promise<unknown>): Promise<AuthError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof AuthError, `not an AuthError: ${String(error)}`);
    return error;
  }
  assert.fail("the call succeeded");
}

/** A fetch that records each request's method and path. */
export function countingFetch(): { fetch: typeof fetch; requests: string[] } {
  const requests: string[] = [];
  const counted: typeof fetch = (input, init) => {
    const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
    requests.push(`${init?.method ?? "GET"} ${url.pathname}`);
    return fetch(input, init);
  };
  return { fetch: counted, requests };
}

export function client(options: Partial<ClientOptions> = {}): AuthClient {
  return new AuthClient({ baseUrl: API_URL, ...options });
}

/** Signs `phone` up through check-phone, verify and register, with the code from the outbox. */
export async function signUp(auth: AuthClient, phone = freshPhone()): Promise<{ phone: string; id: string }> {
  const checked = await auth.checkPhone({ phone });
  if (checked.exists) throw new Error(`${phone} is registered already`);
  const verified = await auth.verify({ phone, code: await codeSentTo(phone), verification_id: checked.verification_id });
  const registered = await auth.register({
    registration_token: verified.registration_token,
    password: PASSWORD,
    first_name: "Sara",
    last_name: "Ahmadi",
    email: "sara@example.com",
  });
  return { phone, id: registered.user.id };
}
