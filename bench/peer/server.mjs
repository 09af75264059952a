// Reference peer for bench/run.sh: oidc-provider with a client-credentials client that gets signed JWT access tokens for
// one resource, like ClippyBot's clippybot-api-service → clippybot-pluginhost — the same client authenticating with
// client_secret_post, and (clippybot-api-service-basic) with client_secret_basic.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT ?? 4100);
const alg = process.env.ALG ?? 'ES256';
const secret = process.env.CLIENT_SECRET;
const resource = 'https://clippybot-pluginhost';

const { privateKey } = alg === 'RS256'
  ? generateKeyPairSync('rsa', { modulusLength: 2048 })
  : generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg, kid: 'bench' };

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: ['client_secret_post', 'client_secret_basic'].map((method) => ({
    client_id: method === 'client_secret_post' ? 'clippybot-api-service' : 'clippybot-api-service-basic',
    client_secret: secret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: method,
    id_token_signed_response_alg: alg,
  })),
  jwks: { keys: [jwk] },
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      getResourceServerInfo: () => ({ scope: 'pluginhost', audience: resource, accessTokenTTL: 900, accessTokenFormat: 'jwt', jwt: { sign: { alg } } }),
      useGrantedResource: () => true,
    },
  },
  scopes: ['pluginhost'],
  enabledJWA: { requestObjectSigningAlgValues: [alg], idTokenSigningAlgValues: [alg] },
});
provider.listen(port, '127.0.0.1', () => console.log(`peer (oidc-provider, ${alg}) on ${port}`));
