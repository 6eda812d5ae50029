// A relying party built the way openid-client v6's documentation shows:
// discovery, then its passport Strategy for the authorization request and
// the callback (code exchange, ID token validation), then userinfo. The
// Go test (cmd/latchkey/interop_node_test.go) drives the browser side.
//
// Environment: ISSUER, CLIENT_ID, CLIENT_SECRET, ADDR (host:port to listen
// on; the callback is http://ADDR/callback).
//
//   GET /start     -> 302 to Latchkey, the request exactly as the Strategy builds it
//   GET /callback  -> 200 {"claims": {...}, "userinfo": {...}, "token": {...}}
//                     or 500 {"error": "...", "cause": "..."}
import http from 'node:http';
import * as client from 'openid-client';
import { Strategy } from 'openid-client/passport';
import passport from 'passport';

const { ISSUER, CLIENT_ID, CLIENT_SECRET, ADDR } = process.env;
const [host, port] = ADDR.split(':');
const callbackURL = `http://${ADDR}/callback`;

// The issuer is http on loopback in tests; everything else is the default.
const config = await client.discovery(new URL(ISSUER), CLIENT_ID, CLIENT_SECRET, undefined, {
  execute: [client.allowInsecureRequests],
});

passport.use('latchkey', new Strategy(
  { name: 'latchkey', config, scope: 'openid profile email', callbackURL },
  (tokens, done) => done(null, { tokens }),
));

// One sign-in at a time: the Strategy keeps its PKCE verifier (and state,
// nonce, when it uses them) in this session.
const session = {};

function sendJSON(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

const server = http.createServer((req, res) => {
  // What express would add and the Strategy reads.
  req.session = session;
  req.protocol = 'http';
  req.host = req.headers.host;
  const path = new URL(req.url, callbackURL).pathname;
  if (path !== '/start' && path !== '/callback') {
    sendJSON(res, 404, { error: 'not found' });
    return;
  }
  passport.authenticate('latchkey', { session: false }, async (err, user, info) => {
    if (err || !user) {
      sendJSON(res, 500, { error: String(err ?? info?.message ?? 'no user'), cause: err?.cause ? String(err.cause) : undefined, code: err?.code });
      return;
    }
    try {
      const { tokens } = user;
      const claims = tokens.claims();
      const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
      sendJSON(res, 200, {
        claims,
        userinfo,
        token: { token_type: tokens.token_type, expires_in: tokens.expires_in, scope: tokens.scope },
      });
    } catch (e) {
      sendJSON(res, 500, { error: String(e), code: e?.code });
    }
  })(req, res, (e) => sendJSON(res, 500, { error: String(e) }));
});

server.listen(Number(port), host, () => {
  process.stdout.write(JSON.stringify({ ready: true, callback: callbackURL }) + '\n');
});
