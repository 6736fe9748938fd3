// The bot check: with the stack of scripts/test-web (CAPTCHA_PROVIDER=turnstile under pressure,
// OTP_SENDS_PER_RANGE_PER_HOUR=4, CAPTCHA_VERIFY_URL pointing here), the third code to one
// range asks for the captcha; the client's `captcha` hook answers it and the request goes again.
import assert from "node:assert/strict";
import { test } from "node:test";
import { CAPTCHA_STUB_PORT, GOOD_TOKEN, stubProvider } from "./captcha-stub.js";
import { client, freshPhone, refusal } from "./support.js";

test("captcha_required is answered by the captcha hook and the code is sent", { skip: !CAPTCHA_STUB_PORT && "PHONE_AUTH_CAPTCHA_STUB_PORT is not set" }, async () => {
  const provider = await stubProvider();
  try {
    const range = freshPhone().slice(0, -4);
    const plain = client();
    // Half of the range's budget (4): no check yet.
    for (let i = 0; i < 2; i++) assert.equal((await plain.checkPhone({ phone: freshPhone(range) })).exists, false);

    const refused = await refusal(plain.checkPhone({ phone: freshPhone(range) }));
    assert.deepEqual([refused.kind, refused.status, refused.captchaRequired], ["captcha_required", 400, true]);

    let asked = 0;
    const solving = client({
      captcha: async () => {
        asked++;
        return GOOD_TOKEN;
      },
    });
    const sent = await solving.checkPhone({ phone: freshPhone(range) });
    assert.equal(sent.exists, false);
    assert.equal(asked, 1);
    assert.deepEqual(provider.tokens, [GOOD_TOKEN]);

    // A token the provider refuses is asked again once, then the refusal is the caller's.
    let failingAsked = 0;
    const failing = client({
      captcha: async () => {
        failingAsked++;
        return "a token the stub provider refuses";
      },
    });
    const stillRefused = await refusal(failing.checkPhone({ phone: freshPhone(range) }));
    assert.equal(stillRefused.kind, "captcha_required");
    assert.equal(failingAsked, 1, "asked once, not in a loop");
    assert.deepEqual(provider.tokens, [GOOD_TOKEN, "a token the stub provider refuses"]);
  } finally {
    await provider.close();
  }
});
