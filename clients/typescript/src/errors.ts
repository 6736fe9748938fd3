/** What a refusal means for the caller, read from the status and the body's flags. */
export type ErrorKind =
  /** Malformed or invalid input (400); `error` names the field. */
  | "bad_request"
  /** The bot check is on: solve the captcha and send the request again with its token. */
  | "captcha_required"
  /** The password was right but the account needs the SMS code: log in again with `code` and `verificationId`. */
  | "code_required"
  /** A code was wrong (`attemptsLeft`), expired or out of tries. */
  | "code_refused"
  /** Wrong phone or password, or a wrong password where a session asked for it (401). */
  | "wrong_credentials"
  /** The session is over (expired, revoked, or a refresh token used twice): sign in again. */
  | "signed_out"
  /** Too many failures of this phone from this network (403): wait `retryAfter` seconds. */
  | "blocked"
  /** A send limit, a cooldown or the account's back-off (429): wait `retryAfter` seconds. */
  | "rate_limited"
  /** The session's login is too old for this change: log in again first. */
  | "login_required"
  /** An operator disabled the account. */
  | "disabled"
  /** The number already has an account (409). */
  | "phone_taken"
  /** The account changed while this request ran (409): send it again. */
  | "conflict"
  /** The registration token is unknown, expired or used: start the sign-up again. */
  | "registration_expired"
  /** No such session (404). */
  | "not_found"
  /** The service or one of its dependencies failed (5xx): retry after `retryAfter` seconds. */
  | "unavailable"
  /** The request did not reach the service (no network, DNS, CORS). */
  | "network";

/** The refusal bodies of the API: `{error}` and the flags some refusals add. */
interface RefusalBody {
  error?: unknown;
  message?: unknown;
  retry_after?: unknown;
  attempts_left?: unknown;
  captcha_required?: unknown;
  code_required?: unknown;
  verification_id?: unknown;
  login_required?: unknown;
  disabled?: unknown;
}

/** A refusal by the API (or a failure to reach it), with everything a client acts on. */
export class AuthError extends Error {
  override readonly name = "AuthError";
  readonly kind: ErrorKind;
  /** The HTTP status; 0 when the request did not reach the service. */
  readonly status: number;
  /** Seconds to wait before trying again (429, 403 blocks, 503). */
  readonly retryAfter?: number;
  /** Wrong codes the caller may still try. */
  readonly attemptsLeft?: number;
  /** The step-up code's id, to send back with the code (`code_required`). */
  readonly verificationId?: string;
  /** The body as the API sent it. */
  readonly body: unknown;

  constructor(kind: ErrorKind, status: number, message: string, details: Partial<AuthErrorDetails> = {}) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.retryAfter = details.retryAfter;
    this.attemptsLeft = details.attemptsLeft;
    this.verificationId = details.verificationId;
    this.body = details.body;
  }

  /** The body's `captcha_required`: solve the bot check and send again with its token. */
  get captchaRequired(): boolean {
    return this.kind === "captcha_required";
  }

  /** The body's `code_required`: log in again with the SMS code and `verificationId`. */
  get codeRequired(): boolean {
    return this.kind === "code_required";
  }
}

interface AuthErrorDetails {
  retryAfter: number;
  attemptsLeft: number;
  verificationId: string;
  body: unknown;
}

/** What the route tells apart that the status alone does not. */
export type RouteKind = "code" | "register" | "other";

/** The error for a refused response: its kind from the status, the flags in `body` and the route. */
export function errorFromResponse(status: number, body: unknown, headers: Headers, route: RouteKind = "other"): AuthError {
  const fields: RefusalBody = typeof body === "object" && body !== null ? (body as RefusalBody) : {};
  // API Gateway's own answers (throttling, unknown path) carry `message` instead of `error`.
  const text = typeof fields.error === "string" ? fields.error : typeof fields.message === "string" ? fields.message : `HTTP ${status}`;
  const header = Number(headers.get("retry-after"));
  const retryAfter = typeof fields.retry_after === "number" ? fields.retry_after : header > 0 ? header : undefined;
  const details: Partial<AuthErrorDetails> = {
    retryAfter,
    attemptsLeft: typeof fields.attempts_left === "number" ? fields.attempts_left : undefined,
    verificationId: typeof fields.verification_id === "string" ? fields.verification_id : undefined,
    body,
  };
  return new AuthError(kindOf(status, fields, headers, route), status, text, details);
}

/** The refusals of a code that carry no `attempts_left`, as openapi.yaml's `CodeRefused` words them. */
const CODE_REFUSALS = [
  "No active OTP for this phone number. Request a new code.",
  "Too many incorrect attempts for this code. Request a new code.",
];
/** openapi.yaml's `PhoneTaken`; the other 409 is a conflict to retry. */
const PHONE_TAKEN = "This phone number is already registered.";

function kindOf(status: number, fields: RefusalBody, headers: Headers, route: RouteKind): ErrorKind {
  if (fields.captcha_required === true) return "captcha_required";
  if (fields.code_required === true) return "code_required";
  if (fields.login_required === true) return "login_required";
  if (fields.disabled === true) return "disabled";
  switch (status) {
    case 400:
      if (route === "code" && (fields.attempts_left !== undefined || CODE_REFUSALS.includes(String(fields.error)))) {
        return "code_refused";
      }
      return "bad_request";
    case 401:
      // A token the service no longer takes comes with a Bearer challenge; a wrong password does not.
      return headers.has("www-authenticate") ? "signed_out" : "wrong_credentials";
    case 403:
      return route === "register" ? "registration_expired" : "blocked";
    case 404:
      return "not_found";
    case 409:
      return fields.error === PHONE_TAKEN ? "phone_taken" : "conflict";
    case 429:
      return "rate_limited";
    default:
      return status >= 500 ? "unavailable" : "bad_request";
  }
}
