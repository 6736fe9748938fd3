/** The tokens of the signed-in session, as the client keeps them. */
export interface StoredTokens {
  access: string;
  /** Opaque and single use: each refresh replaces it. */
  refresh: string;
  /** When the access token expires, in milliseconds since the epoch (from `expires_in`). */
  expiresAt: number;
}

/**
 * Where the client keeps the session. `get` and `set` may be synchronous or return promises
 * (a native secure store, IndexedDB). `set(null)` signs out.
 */
export interface TokenStore {
  get(): StoredTokens | null | Promise<StoredTokens | null>;
  set(tokens: StoredTokens | null): void | Promise<void>;
  /**
   * Stores another tab or process may change too (`localStorage`): the client serialises
   * refreshes across them with the Web Locks API, and re-reads the store inside the lock.
   */
  readonly shared?: boolean;
}

/** The default: the session lives as long as the page (or process), out of reach of other scripts' storage reads. */
export function memoryStore(initial: StoredTokens | null = null): TokenStore {
  let tokens = initial;
  return {
    get: () => tokens,
    set: (next) => {
      tokens = next;
    },
  };
}

/** The part of the Web Storage API the store uses (`window.localStorage`, `sessionStorage`). */
export interface WebStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * The session in `localStorage` (or any Web Storage): it survives reloads and is shared by the
 * origin's tabs, and so is readable by any script on the origin (an XSS steals it). Chromium
 * hands one tab's writes to the others asynchronously, so a tab can still read the refresh
 * token another tab has just spent and refresh with it: the service's grace window
 * (`REFRESH_REUSE_GRACE_SECONDS`, 10 s by default) absorbs that. `indexedDbStore` has no such
 * gap.
 */
export function localStorageStore(key = "phone-auth.session", storage?: WebStorage): TokenStore {
  const backing = storage ?? (globalThis as { localStorage?: WebStorage }).localStorage;
  if (!backing) throw new Error("localStorageStore: no localStorage here; pass a storage");
  return {
    shared: true,
    get: () => parse(backing.getItem(key)),
    set: (tokens) => (tokens ? backing.setItem(key, JSON.stringify(tokens)) : backing.removeItem(key)),
  };
}

function parse(text: string | null): StoredTokens | null {
  if (!text) return null;
  try {
    return checked(JSON.parse(text));
  } catch {
    return null; // A corrupt entry is no session.
  }
}

function checked(value: unknown): StoredTokens | null {
  const tokens = (value ?? {}) as Partial<StoredTokens>;
  if (typeof tokens.access === "string" && typeof tokens.refresh === "string" && typeof tokens.expiresAt === "number") {
    return { access: tokens.access, refresh: tokens.refresh, expiresAt: tokens.expiresAt };
  }
  return null;
}

/**
 * The session in IndexedDB: it survives reloads and is shared by the origin's tabs, and what
 * one tab wrote is what the next reader sees, so with Web Locks exactly one tab refreshes. As
 * readable by the origin's scripts as `localStorage`. The browsers' choice for several tabs.
 */
export function indexedDbStore(database = "phone-auth", factory?: IDBFactory): TokenStore {
  const idb = factory ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (!idb) throw new Error("indexedDbStore: no IndexedDB here; pass a factory");
  let opened: Promise<IDBDatabase> | null = null;
  const open = () =>
    new Promise<IDBDatabase>((resolve, reject) => {
      const request = idb.open(database, 1);
      request.onupgradeneeded = () => request.result.createObjectStore("session");
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  const run = async <T>(mode: IDBTransactionMode, work: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> => {
    const db = await (opened ??= open());
    return new Promise<T>((resolve, reject) => {
      const transaction = db.transaction("session", mode);
      const request = work(transaction.objectStore("session"));
      transaction.oncomplete = () => resolve(request.result);
      transaction.onerror = transaction.onabort = () => reject(transaction.error);
    });
  };
  return {
    shared: true,
    get: async () => checked(await run("readonly", (store) => store.get("tokens"))),
    set: async (tokens) => {
      if (tokens) await run("readwrite", (store) => store.put(tokens, "tokens"));
      else await run("readwrite", (store) => store.delete("tokens"));
    },
  };
}
