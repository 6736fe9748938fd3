// The README's examples, type-checked by `npm test` (never run: they need a real phone).
import { AuthError, createClient, indexedDbStore } from "../src/index.js";

export async function tenLines(askForTheCode: () => Promise<string>, phone: string, password: string): Promise<void> {
  const auth = createClient({ baseUrl: "https://abc123.execute-api.eu-central-1.amazonaws.com", store: indexedDbStore(), tokenOrigins: ["https://api.example.com"] });

  const checked = await auth.checkPhone({ phone: "09101234567" });
  if (!checked.exists) {
    const { registration_token } = await auth.verify({ phone: "09101234567", code: "123456", verification_id: checked.verification_id });
    await auth.register({ registration_token, password: "correct horse battery", first_name: "Sara", last_name: "Ahmadi", email: "sara@example.com" });
  }
  const profile = await auth.getProfile();
  const orders = await auth.authorizedFetch("https://api.example.com/orders");
  void [profile, orders];

  try {
    await auth.login({ phone, password });
  } catch (error) {
    if (error instanceof AuthError && error.kind === "code_required") {
      const code = await askForTheCode();
      await auth.login({ phone, password, code, verification_id: error.verificationId });
    } else throw error;
  }
}
