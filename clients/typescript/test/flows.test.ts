// Every flow of the client against the local stack (scripts/test-web), checking what the
// service answered and what the client kept.
import assert from "node:assert/strict";
import { test } from "node:test";
import { memoryStore } from "../src/index.js";
import { PASSWORD, client, codeSentTo, freshPhone, refusal, signUp, smsCount } from "./support.js";

test("sign-up keeps the session, and the profile is the new account's", async () => {
  const store = memoryStore();
  const auth = client({ store });
  const { phone, id } = await signUp(auth);
  assert.ok(await auth.isSignedIn());
  const kept = await store.get();
  assert.ok(kept && kept.access && kept.refresh && kept.expiresAt > Date.now());
  const profile = await auth.getProfile();
  assert.deepEqual([profile.id, profile.phone, profile.first_name], [id, phone, "Sara"]);
  assert.deepEqual(await auth.checkPhone({ phone }), { exists: true });
});

test("a second code within the cooldown is refused with retry_after", async () => {
  const auth = client();
  const phone = freshPhone();
  const first = await auth.checkPhone({ phone });
  assert.equal(first.exists, false);
  const error = await refusal(auth.checkPhone({ phone }));
  assert.equal(error.kind, "rate_limited");
  assert.equal(error.status, 429);
  assert.ok(error.retryAfter! > 0 && error.retryAfter! <= 60, `retry_after ${error.retryAfter}`);
});

test("a wrong code is code_refused with attempts_left, and bad input is bad_request", async () => {
  const auth = client();
  const phone = freshPhone();
  const sent = await auth.checkPhone({ phone });
  assert.equal(sent.exists, false);
  const code = await codeSentTo(phone);
  const wrong = code === "000000" ? "111111" : "000000";
  const error = await refusal(auth.verify({ phone, code: wrong, verification_id: sent.exists ? null : sent.verification_id }));
  assert.equal(error.kind, "code_refused");
  // The stack blocks a (phone, network) pair after LOCKOUT_MAX_FAILURES=5.
  assert.equal(error.attemptsLeft, 4);
  let blocked = error;
  for (let tries = 0; tries < 6 && blocked.kind !== "blocked"; tries++) {
    blocked = await refusal(auth.verify({ phone, code: wrong, verification_id: sent.exists ? null : sent.verification_id }));
  }
  assert.deepEqual([blocked.kind, blocked.status], ["blocked", 403]);
  assert.ok(blocked.retryAfter! > 0, "a block says how long");
  const invalid = await refusal(auth.checkPhone({ phone: "not a number" }));
  assert.deepEqual([invalid.kind, invalid.status, invalid.message], ["bad_request", 400, "Invalid phone number."]);
});

test("login with the password, a wrong password, and login by code", async () => {
  const { phone, id } = await signUp(client());
  const auth = client();
  const wrong = await refusal(auth.login({ phone, password: "not the password" }));
  assert.deepEqual([wrong.kind, wrong.status], ["wrong_credentials", 401]);
  assert.equal(await auth.isSignedIn(), false);

  await auth.login({ phone, password: PASSWORD });
  assert.equal((await auth.getProfile()).id, id);

  const byCode = client();
  const before = await smsCount(phone);
  const sent = await byCode.requestLoginCode({ phone });
  await byCode.loginWithCode({ phone, code: await codeSentTo(phone, before), verification_id: sent.verification_id });
  assert.equal((await byCode.getProfile()).id, id);
});

test("step-up: after failures the right password asks for the SMS code, and the code logs in", async () => {
  // The stack of scripts/test-web asks for the code after ACCOUNT_MAX_FAILURES=2.
  const { phone, id } = await signUp(client());
  const auth = client();
  for (let i = 0; i < 2; i++) await refusal(auth.login({ phone, password: "not the password" }));
  const before = await smsCount(phone);
  const stepUp = await refusal(auth.login({ phone, password: PASSWORD }));
  assert.equal(stepUp.kind, "code_required");
  assert.ok(stepUp.codeRequired && stepUp.verificationId, "a code was sent, with its id");
  assert.equal(await auth.isSignedIn(), false);

  const code = await codeSentTo(phone, before);
  const wrong = await refusal(
    auth.login({ phone, password: PASSWORD, code: code === "000000" ? "111111" : "000000", verification_id: stepUp.verificationId }),
  );
  assert.equal(wrong.kind, "code_refused");
  await auth.login({ phone, password: PASSWORD, code, verification_id: stepUp.verificationId });
  assert.equal((await auth.getProfile()).id, id);
});

test("profile edits, sessions, logout and a call after it", async () => {
  const signedOut: string[] = [];
  const auth = client({ onSignedOut: (reason) => signedOut.push(reason) });
  const { phone } = await signUp(auth);
  const edited = await auth.updateProfile({ last_name: "Karimi" });
  assert.equal(edited.last_name, "Karimi");
  const invalid = await refusal(auth.updateProfile({ email: "not an email" }));
  assert.equal(invalid.kind, "bad_request");

  const other = client();
  await other.login({ phone, password: PASSWORD });
  const sessions = await auth.listSessions();
  assert.equal(sessions.length, 2);
  const others = sessions.filter((session) => !session.current);
  assert.equal(others.length, 1);
  await auth.endSession(others[0]!.id);
  const ended = await refusal(other.getProfile());
  assert.equal(ended.kind, "signed_out");
  assert.equal(await other.isSignedIn(), false, "the client dropped the ended session");

  await auth.logout();
  assert.deepEqual(signedOut, ["logout"]);
  assert.equal(await auth.isSignedIn(), false);
  assert.equal((await refusal(auth.getProfile())).kind, "signed_out");
});

test("password change keeps this session; a reset ends every session", async () => {
  const auth = client();
  const { phone } = await signUp(auth);
  const elsewhere = client();
  await elsewhere.login({ phone, password: PASSWORD });

  const changed = `${PASSWORD} changed`;
  await auth.changePassword({ old_password: PASSWORD, new_password: changed });
  await auth.getProfile();
  assert.equal((await refusal(elsewhere.getProfile())).kind, "signed_out");

  const reset = `${PASSWORD} reset`;
  const before = await smsCount(phone);
  const requested = await client().requestPasswordReset({ phone });
  await auth.confirmPasswordReset({
    phone,
    code: await codeSentTo(phone, before),
    new_password: reset,
    verification_id: requested.verification_id,
  });
  assert.equal((await refusal(auth.getProfile())).kind, "signed_out", "a reset ends this session too");
  assert.equal(await auth.isSignedIn(), false);
  assert.equal((await refusal(client().login({ phone, password: changed }))).kind, "wrong_credentials");
  await client().login({ phone, password: reset });
});

test("phone change moves the account with the code sent to the new number", async () => {
  const auth = client();
  const { id } = await signUp(auth);
  const newPhone = freshPhone();
  const sent = await auth.requestPhoneChange({ new_phone: newPhone, password: PASSWORD });
  await auth.confirmPhoneChange({ new_phone: newPhone, code: await codeSentTo(newPhone), verification_id: sent.verification_id });
  const profile = await auth.getProfile();
  assert.deepEqual([profile.id, profile.phone], [id, newPhone]);
  await client().login({ phone: newPhone, password: PASSWORD });
});

test("deleting the account signs out and frees the number", async () => {
  const signedOut: string[] = [];
  const auth = client({ onSignedOut: (reason) => signedOut.push(reason) });
  const { phone } = await signUp(auth);
  const wrong = await refusal(auth.deleteAccount({ password: "not the password" }));
  assert.equal(wrong.kind, "wrong_credentials");
  assert.ok(await auth.isSignedIn(), "a wrong password keeps the session");
  await auth.deleteAccount({ password: PASSWORD });
  assert.deepEqual(signedOut, ["account_deleted"]);
  assert.equal((await client().checkPhone({ phone })).exists, false);
});

test("logging out of a session ended elsewhere signs out once, as ended", async () => {
  const reasons: string[] = [];
  const auth = client({ onSignedOut: (reason) => reasons.push(reason) });
  const { phone } = await signUp(auth);
  const other = client();
  await other.login({ phone, password: PASSWORD });
  await other.logout({ all: true });
  await auth.logout();
  assert.deepEqual(reasons, ["session_ended"]);
  assert.equal(await auth.isSignedIn(), false);
});
