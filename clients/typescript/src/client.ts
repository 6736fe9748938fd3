import { AuthError, errorFromResponse, type RouteKind } from "./errors.js";
import { memoryStore, type StoredTokens, type TokenStore } from "./storage.js";
import type {
  CheckPhoneResult,
  CodeSent,
  LoginResult,
  Profile,
  RegisterResult,
  RequestBody,
  ResetRequested,
  SessionView,
  TokenPair,
  VerifyResult,
} from "./types.js";

/** Why the client dropped its session. */
export type SignOutReason = "logout" | "account_deleted" | "session_ended";

export interface ClientOptions {
  /** The API's URL: a stack's `ApiUrl`, or `http://127.0.0.1:9000` for scripts/dev. */
  baseUrl: string;
  /** Where the session is kept; `memoryStore()` by default (see the README for the choice). */
  store?: TokenStore;
  /** Refresh the access token this many seconds before it expires (default 60). */
  refreshMarginSeconds?: number;
  /**
   * Called when the service asks for the bot check (`captcha_required`): resolve to the
   * widget's token and the request is sent once more with it, or to `null` to give up (the
   * `captcha_required` error is then thrown).
   */
  captcha?: () => Promise<string | null>;
  /** Told when the session ends: a logout, the account deleted, or the service ended it. */
  onSignedOut?: (reason: SignOutReason) => void;
  /**
   * Origins of your own APIs that `authorizedFetch` may send the access token to, besides
   * this API's (`https://api.example.com`).
   */
  tokenOrigins?: string[];
  /** The Web Locks name that serialises refreshes across tabs sharing a store. */
  lockName?: string;
  /** For tests and other runtimes. */
  fetch?: typeof fetch;
  /** Milliseconds since the epoch; for tests. */
  now?: () => number;
}

type Method = "GET" | "POST" | "PATCH" | "DELETE";

interface CallOptions {
  body?: object;
  /** Sends the session's access token (refreshed first if it is about to expire). */
  auth?: boolean;
  /** `code`: refusals of a code (wrong, none, out of tries) are `code_refused`; `register`: a 403 is `registration_expired`. */
  route?: RouteKind;
  /** The route takes `captcha_token`: `captcha_required` is answered with `options.captcha`. */
  captcha?: boolean;
}

interface Answer {
  response: Response;
  json: unknown;
}

/** Web Locks, where the runtime has them (browsers; not Node 20). */
interface Locks {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

/**
 * A client of the phone + OTP authentication API. Requests that need the session send its
 * access token, refreshed before it expires; however many calls need a refresh at once, one
 * refresh request is made (and one across tabs that share a store, where Web Locks exist),
 * because a refresh token presented twice ends the session.
 */
export class AuthClient {
  private readonly baseUrl: string;
  private readonly store: TokenStore;
  private readonly marginMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;
  private readonly lockName: string;
  private readonly options: ClientOptions;
  private readonly tokenOrigins: string[];
  private refreshing: Promise<StoredTokens> | null = null;
  /** Bumped by each new session and each sign-out, so that a refresh in flight cannot undo them. */
  private generation = 0;
  /** Whether this client last saw a session, so that finding it gone is reported once. */
  private expectsSession = false;

  constructor(options: ClientOptions) {
    this.options = options;
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.store = options.store ?? memoryStore();
    this.marginMs = (options.refreshMarginSeconds ?? 60) * 1000;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.now = options.now ?? Date.now;
    this.lockName = options.lockName ?? "phone-auth.refresh";
    this.tokenOrigins = [absolute(this.baseUrl || "/").origin, ...(options.tokenOrigins ?? []).map((origin) => absolute(origin).origin)];
  }

  // Sign-up.

  /** Whether the number has an account; if not, a sign-up code is sent to it. */
  checkPhone(body: RequestBody<"checkPhone">): Promise<CheckPhoneResult> {
    return this.call("POST", "/auth/check-phone/", { body, captcha: true });
  }

  /** Exchanges the sign-up code for a registration token. */
  verify(body: RequestBody<"verify">): Promise<VerifyResult> {
    return this.call("POST", "/auth/verify/", { body, route: "code" });
  }

  /** Creates the account and signs in. */
  async register(body: RequestBody<"register">): Promise<RegisterResult> {
    const registered = await this.call<RegisterResult>("POST", "/auth/register/", { body, route: "register" });
    await this.keep(registered.tokens);
    return registered;
  }

  // Login.

  /**
   * Signs in with phone and password. When the account needs the SMS code too, this throws
   * an `AuthError` of kind `code_required` (a code was sent, its id in `verificationId`): call
   * again with `code` and `verification_id`.
   */
  async login(body: RequestBody<"login">): Promise<LoginResult> {
    const route = body.code != null ? "code" : "other";
    const loggedIn = await this.call<LoginResult>("POST", "/auth/login/", { body, captcha: true, route });
    await this.keep(loggedIn.tokens);
    return loggedIn;
  }

  /** Texts a login code to the number if it has an account (the answer is the same if not). */
  requestLoginCode(body: RequestBody<"loginCodeRequest">): Promise<CodeSent> {
    return this.call("POST", "/auth/login/otp/request/", { body, captcha: true });
  }

  /** Signs in with a login code. */
  async loginWithCode(body: RequestBody<"loginWithCode">): Promise<LoginResult> {
    const loggedIn = await this.call<LoginResult>("POST", "/auth/login/otp/", { body, route: "code" });
    await this.keep(loggedIn.tokens);
    return loggedIn;
  }

  // Password.

  /** Texts a reset code to the number if it has an account (the answer is the same if not). */
  requestPasswordReset(body: RequestBody<"passwordResetRequest">): Promise<ResetRequested> {
    return this.call("POST", "/auth/password/reset/request/", { body, captcha: true });
  }

  /**
   * Sets a new password with the reset code. Every session of that account ends: if this
   * client holds one, its next call finds it ended and signs out.
   */
  async confirmPasswordReset(body: RequestBody<"passwordResetConfirm">): Promise<void> {
    await this.call("POST", "/auth/password/reset/confirm/", { body, route: "code" });
  }

  /** Replaces the password; this session stays, the others end. */
  async changePassword(body: RequestBody<"changePassword">): Promise<void> {
    await this.call("POST", "/auth/password/change/", { body, auth: true });
  }

  // Phone number.

  /** Texts a code to the number the account should move to (needs a recent login and the password). */
  requestPhoneChange(body: RequestBody<"phoneChangeRequest">): Promise<CodeSent> {
    return this.call("POST", "/auth/phone/change/request/", { body, auth: true, captcha: true });
  }

  /** Moves the account to the new number with the code sent to it. */
  async confirmPhoneChange(body: RequestBody<"phoneChangeConfirm">): Promise<void> {
    await this.call("POST", "/auth/phone/change/confirm/", { body, auth: true, route: "code" });
  }

  // The account.

  getProfile(): Promise<Profile> {
    return this.call("GET", "/auth/profile/", { auth: true });
  }

  /** Edits the fields given. */
  updateProfile(body: RequestBody<"updateProfile">): Promise<Profile> {
    return this.call("PATCH", "/auth/profile/", { body, auth: true });
  }

  /** Deletes the account (with its password) and signs out. */
  async deleteAccount(body: RequestBody<"deleteAccount">): Promise<void> {
    await this.call("DELETE", "/auth/profile/", { body, auth: true });
    await this.signOutLocally("account_deleted");
  }

  // Sessions.

  async listSessions(): Promise<SessionView[]> {
    const listed = await this.call<{ sessions: SessionView[] }>("GET", "/auth/sessions/", { auth: true });
    return listed.sessions;
  }

  /** Ends one of the user's sessions by its id (this one's is a logout). */
  async endSession(id: string): Promise<void> {
    await this.call("DELETE", `/auth/sessions/${encodeURIComponent(id)}/`, { auth: true });
  }

  /**
   * Ends this session (`{all: true}`: every session) and forgets it. The local session is
   * dropped even when the service cannot be reached; the error is thrown after.
   */
  async logout(body: RequestBody<"logout"> = {}): Promise<void> {
    if (!(await this.isSignedIn())) return;
    try {
      await this.call("POST", "/auth/logout/", { body, auth: true });
    } catch (error) {
      // The service had ended the session already: nothing is left to end.
      if (!(error instanceof AuthError && error.kind === "signed_out")) throw error;
    } finally {
      await this.signOutLocally("logout"); // nothing happens if the call dropped it already
    }
  }

  // Tokens.

  /** Whether a session is kept (it may still turn out to be over when next used). */
  async isSignedIn(): Promise<boolean> {
    return (await this.store.get()) !== null;
  }

  /**
   * A live access token for `Authorization: Bearer`, refreshed first when it expires within
   * the margin. Throws `signed_out` without a session.
   */
  async accessToken(): Promise<string> {
    const tokens = await this.session();
    if (tokens.expiresAt - this.marginMs > this.now()) return tokens.access;
    return (await this.refreshFrom(tokens.refresh)).access;
  }

  /** Refreshes now (one request however many callers ask at once). */
  async refresh(): Promise<StoredTokens> {
    return this.refreshFrom((await this.session()).refresh);
  }

  /**
   * `fetch` with the session's access token, for your own routes behind API Gateway's JWT
   * authorizer. Only to the origins of `tokenOrigins` (the API's own by default): an access
   * token works against this API too, so it goes nowhere else. Redirects are not followed
   * unless `init.redirect` says so. A 401 is answered by one refresh and one retry, when the
   * body can be sent again.
   */
  async authorizedFetch(input: string | URL, init: RequestInit = {}): Promise<Response> {
    const url = absolute(input);
    if (!this.tokenOrigins.includes(url.origin)) {
      throw new TypeError(`authorizedFetch: ${url.origin} is not in tokenOrigins`);
    }
    const send = (token: string) => {
      const headers = new Headers(init.headers);
      headers.set("authorization", `Bearer ${token}`);
      return this.fetchImpl(url, { redirect: "error", ...init, headers });
    };
    const token = await this.accessToken();
    const response = await send(token);
    const replayable = init.body == null || typeof init.body === "string" || init.body instanceof URLSearchParams;
    if (response.status !== 401 || !replayable) return response;
    return send(await this.renewAfterRefusal(token));
  }

  /**
   * Forgets the session without telling the service (it lives on until it expires), and
   * tells `onSignedOut` if there was one.
   */
  async signOutLocally(reason: SignOutReason = "logout"): Promise<void> {
    this.generation++;
    const had = (await this.store.get()) !== null || this.expectsSession;
    this.expectsSession = false;
    await this.store.set(null);
    if (had) this.options.onSignedOut?.(reason);
  }

  // Internals.

  private async call<T>(method: Method, path: string, options: CallOptions): Promise<T> {
    let body = options.body;
    let answer = await this.sendAuthorized(method, path, body, options.auth);
    if (options.captcha && this.options.captcha && isCaptchaRequired(answer.json)) {
      const captchaToken = await this.options.captcha();
      if (captchaToken) {
        body = { ...body, captcha_token: captchaToken };
        // The widget may have taken long enough for the access token to fall due.
        answer = await this.sendAuthorized(method, path, body, options.auth);
      }
    }
    if (answer.response.ok) return answer.json as T;
    const error = errorFromResponse(answer.response.status, answer.json, answer.response.headers, options.route);
    if (options.auth && error.kind === "signed_out") await this.signOutLocally("session_ended");
    throw error;
  }

  /** Sends with the session's access token if `auth`, and once more after a refresh if the service refuses the token. */
  private async sendAuthorized(method: Method, path: string, body: object | undefined, auth?: boolean): Promise<Answer> {
    if (!auth) return this.send(method, path, body);
    const token = await this.accessToken();
    const answer = await this.send(method, path, body, token);
    if (answer.response.status !== 401 || !answer.response.headers.has("www-authenticate")) return answer;
    // Refused before anything was done: the token expired early (a slow clock) or the
    // session was refreshed elsewhere. One refresh, one retry.
    return this.send(method, path, body, await this.renewAfterRefusal(token));
  }

  private async send(method: Method, path: string, body: object | undefined, token?: string): Promise<Answer> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (token) headers.authorization = `Bearer ${token}`;
    let response: Response;
    try {
      response = await this.fetchImpl(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        // Never follow a redirect with the token or the password.
        redirect: "error",
      });
    } catch (cause) {
      throw new AuthError("network", 0, `Could not reach the service: ${String(cause)}`);
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { response, json };
  }

  /** The kept session; when it is gone (another tab signed out), that is reported once. */
  private async session(): Promise<StoredTokens> {
    const tokens = await this.store.get();
    if (tokens) {
      this.expectsSession = true;
      return tokens;
    }
    if (this.expectsSession) await this.signOutLocally("session_ended");
    throw notSignedIn();
  }

  /** A new access token after the service refused `refused`: the kept one if it is newer, else a refresh. */
  private async renewAfterRefusal(refused: string): Promise<string> {
    const tokens = await this.session();
    if (tokens.access !== refused) return tokens.access;
    return (await this.refreshFrom(tokens.refresh)).access;
  }

  private refreshFrom(seen: string): Promise<StoredTokens> {
    if (!this.refreshing) {
      this.refreshing = this.exclusive(() => this.rotate(seen)).finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  /** Across tabs, where the store is shared and the runtime has Web Locks; else this client alone. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const locks = (globalThis as { navigator?: { locks?: Locks } }).navigator?.locks;
    if (this.store.shared && locks) return locks.request(this.lockName, work);
    return work();
  }

  /** Spends `seen` for a new pair, unless the kept pair moved on since it was read. */
  private async rotate(seen: string): Promise<StoredTokens> {
    const generation = this.generation;
    const current = await this.session();
    // Rotated meanwhile (by this client, or by another tab inside the lock): use that pair.
    if (current.refresh !== seen) return current;
    const answer = await this.send("POST", "/auth/refresh/", { refresh: seen });
    // A logout, a login or another tab's refresh while this one was in flight wins: the
    // answer is not stored over it (nor a signed-out session brought back).
    const kept = await this.session();
    if (this.generation !== generation || kept.refresh !== seen) return kept;
    if (answer.response.ok) {
      const pair = (answer.json as { tokens: TokenPair }).tokens;
      const tokens = this.tokensOf(pair);
      await this.store.set(tokens);
      return tokens;
    }
    const error = errorFromResponse(answer.response.status, answer.json, answer.response.headers);
    // 401: expired, revoked, or presented twice (the service ended the session); 403 with
    // `disabled`: an operator disabled the account. Any other refusal leaves the session.
    if (error.status === 401 || error.kind === "disabled") {
      await this.signOutLocally("session_ended");
      throw new AuthError("signed_out", error.status, error.message, { body: answer.json });
    }
    throw error;
  }

  /** Keeps the pair of a new session (a login or a registration). */
  private async keep(pair: TokenPair): Promise<void> {
    this.generation++;
    this.expectsSession = true;
    await this.store.set(this.tokensOf(pair));
  }

  private tokensOf(pair: TokenPair): StoredTokens {
    return { access: pair.access, refresh: pair.refresh, expiresAt: this.now() + pair.expires_in * 1000 };
  }
}

function isCaptchaRequired(json: unknown): boolean {
  return typeof json === "object" && json !== null && (json as { captcha_required?: unknown }).captcha_required === true;
}

/** `url` resolved against the page's address where there is one (a relative `baseUrl` in a browser). */
function absolute(url: string | URL): URL {
  return new URL(url, (globalThis as { location?: { href: string } }).location?.href);
}

function notSignedIn(): AuthError {
  return new AuthError("signed_out", 401, "Not signed in.");
}

/** A client of the API at `options.baseUrl`. */
export function createClient(options: ClientOptions): AuthClient {
  return new AuthClient(options);
}

