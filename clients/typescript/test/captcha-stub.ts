// A stand-in for the bot-check provider (Turnstile): its siteverify, which the service calls
// (CAPTCHA_VERIFY_URL points here in scripts/test-web), and its widget script, which the
// sign-in page loads (serve.mjs's CAPTCHA_SCRIPT_URL). The real ones are on the internet.
import { createServer } from "node:http";

export const CAPTCHA_STUB_PORT = Number(process.env.PHONE_AUTH_CAPTCHA_STUB_PORT);
export const GOOD_TOKEN = "a token the stub provider accepts";

/** The widget: `turnstile.render(element, {sitekey, callback})` draws a button that solves it. */
const WIDGET = `window.turnstile = {
  render(element, { sitekey, callback }) {
    const button = document.createElement("button");
    button.type = "button";
    button.id = "stub-captcha";
    button.dataset.sitekey = sitekey;
    button.textContent = "I am human";
    button.onclick = () => callback(${JSON.stringify(GOOD_TOKEN)});
    element.append(button);
  },
};
`;

/** Starts the stub; `tokens` are the tokens the service asked it to verify. */
export async function stubProvider(): Promise<{ tokens: string[]; close: () => Promise<void> }> {
  const tokens: string[] = [];
  const server = createServer((request, response) => {
    if (request.url?.startsWith("/api.js")) {
      response.setHeader("content-type", "text/javascript");
      return response.end(WIDGET);
    }
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      const token = new URLSearchParams(body).get("response") ?? "";
      tokens.push(token);
      response.setHeader("content-type", "application/json");
      const answer = token === GOOD_TOKEN ? { success: true } : { success: false, "error-codes": ["invalid-input-response"] };
      response.end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((resolve) => server.listen(CAPTCHA_STUB_PORT, "127.0.0.1", resolve));
  return { tokens, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
