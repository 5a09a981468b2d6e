// A standards OpenID provider (panva/oidc-provider, OpenID Certified) for pbx365's SSO
// interoperability test. It listens on 127.0.0.1 (a free port), serves the issuer
// http://127.0.0.1:PORT/{tenant}/v2.0 (the shape pbx365 derives from m365.authority_url and the
// tenant), knows one client (pbx365, private_key_jwt with its certificate key) and one
// account, and prints "READY <port>" once it answers. Everything comes from the environment:
//   OP_TENANT, OP_CLIENT_ID, OP_REDIRECT_URI, OP_CLIENT_JWK (JSON), OP_ACCOUNT_OID
import http from 'node:http';
import express from 'express';
import Provider from 'oidc-provider';

const env = (k) => {
  const v = process.env[k];
  if (!v) { console.error(`missing ${k}`); process.exit(2); }
  return v;
};
const tenant = env('OP_TENANT');
const oid = env('OP_ACCOUNT_OID');

const app = express();
const server = http.createServer(app);
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const mount = `/${tenant}/v2.0`;
  const provider = new Provider(`http://127.0.0.1:${port}${mount}`, {
    clients: [{
      client_id: env('OP_CLIENT_ID'),
      redirect_uris: [env('OP_REDIRECT_URI')],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'PS256',
      jwks: { keys: [JSON.parse(env('OP_CLIENT_JWK'))] },
    }],
    scopes: ['openid', 'profile'],
    claims: { openid: ['sub'], profile: ['name', 'oid', 'tid'] },
    // Scope claims in the ID token itself, as Microsoft's v2 ID tokens carry oid/tid.
    conformIdTokenClaims: false,
    cookies: { keys: ['pbx365-interop-test-cookie-key'] },
    pkce: { required: () => true },
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() { return { sub: id, name: 'Interop User', oid, tid: tenant }; },
      };
    },
  });
  provider.proxy = false;
  app.use(mount, provider.callback());
  console.log(`READY ${port}`);
});
