export { AuthClient, createClient, type ClientOptions, type SignOutReason } from "./client.js";
export { AuthError, type ErrorKind } from "./errors.js";
export { indexedDbStore, localStorageStore, memoryStore, type StoredTokens, type TokenStore, type WebStorage } from "./storage.js";
export { webOtp, webOtpSupported } from "./webotp.js";
export type * from "./types.js";
export type { components, operations, paths } from "./schema.js";
