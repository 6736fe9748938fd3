import { AuthError, errorFromResponse } from "./errors.js";
import type { operations } from "./schema.js";
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
  /** Refusals of a code (wrong, none, out of tries) are `code_refused`. */
  codeRoute?: boolean;
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
  private refreshing: Promise<StoredTokens> | null = null;

  constructor(options: ClientOptions) {
    this.options = options;
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.store = options.store ?? memoryStore();
    this.marginMs = (options.refreshMarginSeconds ?? 60) * 1000;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.now = options.now ?? Date.now;
    this.lockName = options.lockName ?? "phone-auth.refresh";
  }

  // Sign-up.

  /** Whether the number has an account; if not, a sign-up code is sent to it. */
  checkPhone(body: RequestBody<"checkPhone">): Promise<CheckPhoneResult> {
    return this.call("POST", "/auth/check-phone/", { body, captcha: true });
  }

  /** Exchanges the sign-up code for a registration token. */
  verify(body: RequestBody<"verify">): Promise<VerifyResult> {
    return this.call("POST", "/auth/verify/", { body, codeRoute: true });
  }

  /** Creates the account and signs in. */
  async register(body: RequestBody<"register">): Promise<RegisterResult> {
    const registered = await this.call<RegisterResult>("POST", "/auth/register/", { body });
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
    const codeRoute = body.code != null;
    const loggedIn = await this.call<LoginResult>("POST", "/auth/login/", { body, captcha: true, codeRoute });
    await this.keep(loggedIn.tokens);
    return loggedIn;
  }

  /** Texts a login code to the number if it has an account (the answer is the same if not). */
  requestLoginCode(body: RequestBody<"loginCodeRequest">): Promise<CodeSent> {
    return this.call("POST", "/auth/login/otp/request/", { body, captcha: true });
  }

  /** Signs in with a login code. */
  async loginWithCode(body: RequestBody<"loginWithCode">): Promise<LoginResult> {
    const loggedIn = await this.call<LoginResult>("POST", "/auth/login/otp/", { body, codeRoute: true });
    await this.keep(loggedIn.tokens);
    return loggedIn;
  }

  // Password.

  /** Texts a reset code to the number if it has an account (the answer is the same if not). */
  requestPasswordReset(body: RequestBody<"passwordResetRequest">): Promise<ResetRequested> {
    return this.call("POST", "/auth/password/reset/request/", { body, captcha: true });
  }

  /** Sets a new password with the reset code. Every session ends, this client's too. */
  async confirmPasswordReset(body: RequestBody<"passwordResetConfirm">): Promise<void> {
    await this.call("POST", "/auth/password/reset/confirm/", { body, codeRoute: true });
    if (await this.store.get()) await this.signOutLocally("session_ended");
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
    await this.call("POST", "/auth/phone/change/confirm/", { body, auth: true, codeRoute: true });
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
    if (!(await this.store.get())) return;
    try {
      await this.call("POST", "/auth/logout/", { body, auth: true });
    } catch (error) {
      if (!(error instanceof AuthError && error.kind === "signed_out")) {
        await this.signOutLocally("logout");
        throw error;
      }
    }
    await this.signOutLocally("logout");
  }

  // Tokens.

  /** Whether a session is kept (it may still turn out to be over when next used). */
  async isSignedIn(): Promise<boolean> {
    return (await this.store.get()) !== null;
  }

  /**
   * A live access token for `Authorization: Bearer` on your own API, refreshed first when it
   * expires within the margin. Throws `signed_out` without a session.
   */
  async accessToken(): Promise<string> {
    const tokens = await this.store.get();
    if (!tokens) throw notSignedIn();
    if (tokens.expiresAt - this.marginMs > this.now()) return tokens.access;
    return (await this.refreshFrom(tokens.refresh)).access;
  }

  /** Refreshes now (one request however many callers ask at once). */
  async refresh(): Promise<StoredTokens> {
    const tokens = await this.store.get();
    if (!tokens) throw notSignedIn();
    return this.refreshFrom(tokens.refresh);
  }

  /**
   * `fetch` with the session's access token, for your own routes behind API Gateway's JWT
   * authorizer. A 401 is answered by one refresh and one retry.
   */
  async authorizedFetch(input: string | URL, init: RequestInit = {}): Promise<Response> {
    const send = (token: string) => {
      const headers = new Headers(init.headers);
      headers.set("authorization", `Bearer ${token}`);
      return this.fetchImpl(input, { ...init, headers });
    };
    const token = await this.accessToken();
    const response = await send(token);
    if (response.status !== 401) return response;
    return send(await this.renewAfterRefusal(token));
  }

  /** Forgets the session without telling the service (it lives on until it expires). */
  async signOutLocally(reason: SignOutReason = "logout"): Promise<void> {
    await this.store.set(null);
    this.options.onSignedOut?.(reason);
  }

  // Internals.

  private async call<T>(method: Method, path: string, options: CallOptions): Promise<T> {
    let body = options.body;
    let token = options.auth ? await this.accessToken() : undefined;
    let answer = await this.send(method, path, body, token);
    if (token && answer.response.status === 401 && answer.response.headers.has("www-authenticate")) {
      // Refused before anything was done: the token expired early (a slow clock) or the
      // session was refreshed elsewhere. One refresh, one retry.
      token = await this.renewAfterRefusal(token);
      answer = await this.send(method, path, body, token);
    }
    if (options.captcha && this.options.captcha && isCaptchaRequired(answer.json)) {
      const captchaToken = await this.options.captcha();
      if (captchaToken) {
        body = { ...body, captcha_token: captchaToken };
        answer = await this.send(method, path, body, token);
      }
    }
    if (answer.response.ok) return answer.json as T;
    const error = errorFromResponse(answer.response.status, answer.json, answer.response.headers, options.codeRoute);
    if (options.auth && (error.kind === "signed_out" || error.kind === "disabled")) {
      await this.signOutLocally("session_ended");
    }
    throw error;
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

  /** A new access token after the service refused `refused`: the kept one if it is newer, else a refresh. */
  private async renewAfterRefusal(refused: string): Promise<string> {
    const tokens = await this.store.get();
    if (!tokens) throw notSignedIn();
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
    const current = await this.store.get();
    if (!current) throw notSignedIn();
    // Rotated meanwhile (by this client, or by another tab inside the lock): use that pair.
    if (current.refresh !== seen) return current;
    const answer = await this.send("POST", "/auth/refresh/", { refresh: seen });
    if (answer.response.ok) {
      return this.keep((answer.json as { tokens: TokenPair }).tokens);
    }
    const error = errorFromResponse(answer.response.status, answer.json, answer.response.headers);
    // 401: expired, revoked, or presented twice (the service ended the session); 403: disabled.
    if (answer.response.status === 401 || answer.response.status === 403) {
      const now = await this.store.get();
      if (now && now.refresh !== seen) return now;
      await this.signOutLocally("session_ended");
      throw new AuthError("signed_out", answer.response.status, error.message, { body: answer.json });
    }
    throw error;
  }

  private async keep(pair: TokenPair): Promise<StoredTokens> {
    const tokens = { access: pair.access, refresh: pair.refresh, expiresAt: this.now() + pair.expires_in * 1000 };
    await this.store.set(tokens);
    return tokens;
  }
}

function isCaptchaRequired(json: unknown): boolean {
  return typeof json === "object" && json !== null && (json as { captcha_required?: unknown }).captcha_required === true;
}

function notSignedIn(): AuthError {
  return new AuthError("signed_out", 401, "Not signed in.");
}

/** A client of the API at `options.baseUrl`. */
export function createClient(options: ClientOptions): AuthClient {
  return new AuthClient(options);
}

export type { operations };
