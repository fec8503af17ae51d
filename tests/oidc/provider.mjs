// A real, standards-conformant OpenID Connect provider for the sign-in tests: panva's oidc-provider, on
// loopback, with one client (the app) and the accounts given in OIDC_ACCOUNTS. Its own login page is the
// library's development interaction: any account id below, any password. Nothing here is for production.
//
// Environment: OIDC_PORT, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI (the app's /oauth2callback),
// OIDC_ACCOUNTS (JSON: {"id": {"name": ..., "email": ..., "roles": [...]}}), OIDC_ID_TOKEN_TTL (seconds).
import Provider from "oidc-provider";

const port = Number(process.env.OIDC_PORT);
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.OIDC_CLIENT_ID,
      client_secret: process.env.OIDC_CLIENT_SECRET,
      redirect_uris: [process.env.OIDC_REDIRECT_URI],
      // Streamlit's st.logout comes back to its /oauth2callback after the provider's sign-out.
      post_logout_redirect_uris: [process.env.OIDC_REDIRECT_URI],
      grant_types: ["authorization_code"],
      response_types: ["code"],
    },
  ],
  // The roles claim travels in the ID token, where Streamlit's st.user reads claims from.
  claims: { openid: ["sub"], profile: ["name"], email: ["email"], roles: ["roles"] },
  conformIdTokenClaims: false,
  scopes: ["openid", "profile", "email", "roles", "offline_access"],
  pkce: { required: () => false },
  ttl: { IdToken: Number(process.env.OIDC_ID_TOKEN_TTL || 3600) },
  features: { devInteractions: { enabled: true } },
  async findAccount(_ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...account }; } };
  },
});
provider.proxy = false;
provider.listen(port, "127.0.0.1", () => console.log(`oidc-provider listening on ${issuer}`));
