/** What `navigator.credentials.get({otp})` resolves to where WebOTP is supported. */
interface OtpCredential {
  code?: string;
}

/** Whether this browser can read an SMS code with WebOTP (Chrome on Android, mostly). */
export function webOtpSupported(): boolean {
  return typeof window !== "undefined" && "OTPCredential" in window && !!navigator.credentials;
}

/**
 * Waits for the SMS code with WebOTP and resolves to it, or to `null` where WebOTP is not
 * supported, when the user dismisses the prompt, or when `signal` aborts (abort it once the
 * user types the code). The SMS must end with the line `@<your host> #<code>`: set
 * `WEBOTP_DOMAIN` on the service to the host name of the page.
 */
export async function webOtp(signal?: AbortSignal): Promise<string | null> {
  if (!webOtpSupported()) return null;
  try {
    const options = { otp: { transport: ["sms"] }, signal } as CredentialRequestOptions;
    const credential = (await navigator.credentials.get(options)) as OtpCredential | null;
    return credential?.code ?? null;
  } catch {
    // Aborted, dismissed, or no SMS in time: the user types the code instead.
    return null;
  }
}
