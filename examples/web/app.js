// The sign-in page: sign-up (check-phone → code → register), login with the password (and the
// SMS code when the account asks for it), login by code, the profile and logout, with the
// client of clients/typescript (served at ./client/ by serve.mjs; in your app, import the package).
import { AuthError, createClient, indexedDbStore, webOtp } from "./client/index.js";

const config = window.PHONE_AUTH_CONFIG ?? {};
const status = document.getElementById("status");
const steps = [...document.querySelectorAll("[data-step]")];

const auth = createClient({
  // Empty: the API is on this page's origin (serve.mjs forwards /auth/ to it).
  baseUrl: config.apiUrl || window.location.origin,
  // Survives reloads and is shared by this origin's tabs, which refresh one at a time.
  store: indexedDbStore(),
  captcha: config.captcha ? solveCaptcha : undefined,
  onSignedOut: () => show("phone-step", "You are signed out."),
});
// For the browser test, and for trying the client from the console.
window.phoneAuth = auth;

/** What the flow carries from one step to the next. */
const flow = { phone: "", verificationId: null, registrationToken: null, byCode: false };
let waitingForSms = null;

function show(id, message = "") {
  for (const step of steps) step.hidden = step.id !== id;
  for (const span of document.querySelectorAll(".phone")) span.textContent = flow.phone;
  status.textContent = message;
  status.classList.remove("error");
  waitingForSms?.abort();
  const inputs = [...(document.getElementById(id)?.querySelectorAll("input") ?? [])];
  inputs.find((input) => !input.closest("[hidden]"))?.focus();
  if (id === "code-step") fillCodeFromSms(document.querySelector("#code-step [name=code]"));
}

/** WebOTP, where the browser has it: the code fills itself in when the SMS arrives. */
function fillCodeFromSms(input) {
  waitingForSms = new AbortController();
  input.addEventListener("input", () => waitingForSms?.abort(), { once: true });
  webOtp(waitingForSms.signal).then((code) => {
    if (code && !input.value) input.value = code;
  });
}

function showError(error) {
  status.textContent = explain(error);
  status.classList.add("error");
}

/** A message for the person in front of the page. */
function explain(error) {
  if (!(error instanceof AuthError)) return `Something went wrong: ${error}`;
  switch (error.kind) {
    case "rate_limited":
    case "blocked":
      return `${error.message} (try again in ${error.retryAfter ?? "a few"} seconds)`;
    case "code_refused":
      return error.attemptsLeft === undefined ? error.message : `Wrong code: ${error.attemptsLeft} tries left.`;
    case "network":
      return "The service cannot be reached. Check your connection.";
    default:
      return error.message;
  }
}

/** Runs a step's action, with its form disabled meanwhile and errors shown. */
function onSubmit(id, action) {
  const form = document.getElementById(id);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const fields = Object.fromEntries(new FormData(form));
    for (const button of form.querySelectorAll("button")) button.disabled = true;
    status.textContent = "…";
    status.classList.remove("error");
    try {
      await action(fields);
    } catch (error) {
      showError(error);
    } finally {
      for (const button of form.querySelectorAll("button")) button.disabled = false;
    }
  });
}

onSubmit("phone-step", async ({ phone }) => {
  flow.phone = phone.trim();
  const checked = await auth.checkPhone({ phone: flow.phone });
  if (checked.exists) {
    document.getElementById("step-up").hidden = true;
    return show("password-step");
  }
  flow.byCode = false;
  flow.verificationId = checked.verification_id;
  show("code-step", "We sent you a code by SMS.");
});

onSubmit("password-step", async ({ password, code }) => {
  const stepUp = document.getElementById("step-up");
  const body = { phone: flow.phone, password };
  if (!stepUp.hidden) Object.assign(body, { code, verification_id: flow.verificationId });
  try {
    await auth.login(body);
  } catch (error) {
    if (error instanceof AuthError && error.kind === "code_required") {
      // The account had many failed logins: the right password needs the code sent by SMS.
      flow.verificationId = error.verificationId ?? null;
      stepUp.hidden = false;
      stepUp.querySelector("input").focus();
      status.textContent = "For your security, enter the code we just sent you by SMS.";
      return;
    }
    throw error;
  }
  await showProfile();
});

document.getElementById("use-code").addEventListener("click", async () => {
  try {
    const sent = await auth.requestLoginCode({ phone: flow.phone });
    flow.byCode = true;
    flow.verificationId = sent.verification_id;
    show("code-step", "If this number has an account, we sent it a code by SMS.");
  } catch (error) {
    showError(error);
  }
});

onSubmit("code-step", async ({ code }) => {
  const guess = { phone: flow.phone, code: code.trim(), verification_id: flow.verificationId };
  if (flow.byCode) {
    await auth.loginWithCode(guess);
    return showProfile();
  }
  flow.registrationToken = (await auth.verify(guess)).registration_token;
  show("register-step");
});

onSubmit("register-step", async (fields) => {
  await auth.register({ registration_token: flow.registrationToken, ...fields });
  flow.registrationToken = null;
  await showProfile("Welcome!");
});

document.getElementById("logout").addEventListener("click", () => auth.logout().catch(() => undefined));
for (const back of document.querySelectorAll("[data-back]")) back.addEventListener("click", () => show("phone-step"));

async function showProfile(message = "") {
  const [profile, sessions] = await Promise.all([auth.getProfile(), auth.listSessions()]);
  document.getElementById("profile-name").textContent = `${profile.first_name} ${profile.last_name}`;
  document.getElementById("profile-phone").textContent = profile.phone;
  document.getElementById("profile-email").textContent = profile.email;
  document.getElementById("profile-created").textContent = new Date(profile.created_at).toLocaleDateString();
  const list = document.getElementById("sessions");
  list.replaceChildren(
    ...sessions.map((session) => {
      const item = document.createElement("li");
      const used = new Date(session.last_used_at).toLocaleString();
      item.textContent = `${session.user_agent ?? "unknown device"}, last used ${used}${session.current ? " (this one)" : ""}`;
      return item;
    }),
  );
  show("profile-step", message);
}

/**
 * The bot check, when the service asks for it: Turnstile, hCaptcha and reCAPTCHA v2 all render
 * a widget with `render(element, {sitekey, callback})`; the token it gives is sent with the
 * request again.
 */
async function solveCaptcha() {
  const { provider, siteKey, scriptUrl } = config.captcha;
  const global = { turnstile: "turnstile", hcaptcha: "hcaptcha", recaptcha: "grecaptcha" }[provider];
  if (!window[global]) {
    await new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = scriptUrl;
      script.onload = resolve;
      script.onerror = () => reject(new Error("the bot check could not be loaded"));
      document.head.append(script);
    });
  }
  const container = document.getElementById("captcha");
  container.replaceChildren();
  container.hidden = false;
  status.textContent = "Please confirm you are not a robot.";
  try {
    return await new Promise((callback, reject) => {
      const failed = () => reject(new Error("The bot check did not complete. Try again."));
      window[global].render(container, { sitekey: siteKey, callback, "error-callback": failed, "expired-callback": failed });
    });
  } finally {
    container.hidden = true;
  }
}

// A kept session goes straight to the profile (refreshed first if its access token expired).
if (await auth.isSignedIn()) {
  showProfile().catch(() => show("phone-step"));
} else {
  show("phone-step");
}
