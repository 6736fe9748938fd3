// The request and response types of the API's operations, read off the generated `schema.ts`
// (openapi-typescript from openapi.yaml), so that they change only when the spec does.
import type { components, operations } from "./schema.js";

type Json<T> = T extends { content: { "application/json": infer Body } } ? Body : never;

/** The JSON body operation `O` takes. */
export type RequestBody<O extends keyof operations> = operations[O] extends { requestBody?: infer R } ? Json<NonNullable<R>> : never;

/** The JSON body of operation `O`'s answer with status `S`. */
export type ResponseBody<O extends keyof operations, S extends keyof operations[O]["responses"]> = Json<operations[O]["responses"][S]>;

export type Schemas = components["schemas"];
export type TokenPair = Schemas["TokenPair"];
export type User = Schemas["User"];
export type Profile = Schemas["Profile"];
export type SessionView = Schemas["SessionView"];
export type CodeSent = Schemas["CodeSent"];

export type CheckPhoneResult = ResponseBody<"checkPhone", 200>;
export type VerifyResult = ResponseBody<"verify", 200>;
export type RegisterResult = ResponseBody<"register", 201>;
export type LoginResult = ResponseBody<"login", 200>;
export type ResetRequested = ResponseBody<"passwordResetRequest", 200>;
