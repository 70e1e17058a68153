// A real OpenID provider for mmkb's OIDC sign-in tests (tests/test_oidc_login.py):
// panva/oidc-provider on loopback, one confidential client, accounts with a `groups` claim,
// and a minimal login page that a test drives with plain HTTP or a browser.
//
//   node server.mjs PORT CONFIG.json
//
// CONFIG.json: {"client_id", "client_secret", "redirect_uris": [...],
//               "accounts": {"alice": {"password": "...", "groups": ["engineering"]}}}
// It is read again at each sign-in, so a test changes someone's groups by rewriting it.
// Prints "ready <issuer>" once it listens.

import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const [port, configPath] = process.argv.slice(2);
if (!port || !configPath) {
  console.error('usage: node server.mjs PORT CONFIG.json');
  process.exit(2);
}
const readConfig = () => JSON.parse(readFileSync(configPath, 'utf8'));
const config = readConfig();
const issuer = `http://127.0.0.1:${port}`;

// A signing key of this run only: mmkb must read it from the provider's JWKS.
const signingKey = { ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }), kid: 'test-key-1', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: config.client_id,
      client_secret: config.client_secret,
      redirect_uris: config.redirect_uris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: { openid: ['sub'], profile: ['preferred_username', 'name'], email: ['email'], groups: ['groups'] },
  // oidc-provider requires PKCE only of public clients by default; this one has a secret, and
  // the tests check that mmkb sends PKCE all the same, so the provider insists on it.
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const account = readConfig().accounts[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: account.username ?? id, name: id, email: `${id}@example.org`, groups: account.groups ?? [] };
      },
    };
  },
  // mmkb is a first-party client here: what it asks for is granted without a consent page.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    const grant = (grantId && (await ctx.oidc.provider.Grant.find(grantId)))
      || new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile email groups');
    await grant.save();
    return grant;
  },
});

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res, status, uid, message = '') {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><title>Test provider sign-in</title>
<h1>Test provider</h1><p id="message">${escape(message)}</p>
<form method="post" action="/interaction/${escape(uid)}/login">
  <label>User <input name="login" id="login"></label>
  <label>Password <input name="password" id="password" type="password"></label>
  <button type="submit" id="sign-in">Sign in</button>
</form>
<form method="post" action="/interaction/${escape(uid)}/abort"><button type="submit" id="cancel">Cancel</button></form>`);
}

async function form(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

function same(a, b) {
  const x = Buffer.from(String(a));
  const y = Buffer.from(String(b));
  return x.length === y.length && timingSafeEqual(x, y);
}

async function interaction(req, res) {
  const [, , uid, action] = new URL(req.url, issuer).pathname.split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  if (req.method === 'GET') return page(res, 200, uid);
  if (action === 'abort') {
    return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the user cancelled' }, { mergeWithLastSubmission: false });
  }
  const fields = await form(req);
  const account = readConfig().accounts[fields.get('login')];
  if (!account || !same(account.password, fields.get('password'))) return page(res, 401, uid, 'wrong user or password');
  return provider.interactionFinished(req, res, { login: { accountId: fields.get('login') } }, { mergeWithLastSubmission: false });
}

const handle = provider.callback();
http
  .createServer((req, res) => {
    if (req.url.startsWith('/interaction/')) {
      interaction(req, res).catch((error) => {
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end(`interaction failed: ${error.message}`);
      });
      return;
    }
    handle(req, res);
  })
  .listen(Number(port), '127.0.0.1', () => console.log(`ready ${issuer}`));
