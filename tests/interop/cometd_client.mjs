// A real Bayeux peer for tests/emulators/test_cometd_interop.py: the CometD project's own
// JavaScript client (npm `cometd`) running in Node through `cometd-nodejs-client`.
//
// Usage: node cometd_client.mjs <base-url> <user> <password>
// 1. GET <base>/api/v2/me with Basic auth: the JSESSIONID cookie and the X-CSRF-TOKEN header;
// 2. handshake + subscribe /v2/me/calls over long-polling, sending Basic auth, the cookie and the
//    CSRF header on every request (CometD's `requestHeaders` configuration);
// 3. prints {"ready": true, ...} on one line, then waits for one CallStateChangeMessage (the test
//    dials over REST), disconnects and prints the result as one JSON line. Exits 1 on a failure.
import { adapt } from "cometd-nodejs-client";
import { CometD } from "cometd";

const [base, user, password] = process.argv.slice(2);
const result = { handshake: null, subscribe: null, message: null, disconnect: null, errors: [] };

function finish(code) {
    process.stdout.write(JSON.stringify(result) + "\n");
    process.exit(code);
}

setTimeout(() => {
    result.errors.push("timed out");
    finish(1);
}, 30000).unref();

const authorization = "Basic " + Buffer.from(`${user}:${password}`).toString("base64");
const me = await fetch(`${base}/api/v2/me`, { headers: { Authorization: authorization } });
const cookie = (me.headers.get("set-cookie") || "").split(";")[0];
const csrfHeader = me.headers.get("x-csrf-header") || "X-CSRF-TOKEN";
const csrfToken = me.headers.get("x-csrf-token") || "";
if (me.status !== 200 || !cookie.startsWith("JSESSIONID=")) {
    result.errors.push(`GET /api/v2/me answered ${me.status} without a session cookie`);
    finish(1);
}

adapt();
const cometd = new CometD();
// GWS offers long-polling only; dropping websocket keeps the handshake honest about it.
cometd.unregisterTransport("websocket");
cometd.unregisterTransport("callback-polling");
cometd.configure({
    url: `${base}/api/v2/notifications`,
    logLevel: "warn",
    requestHeaders: { Authorization: authorization, Cookie: cookie, [csrfHeader]: csrfToken },
});

cometd.handshake((reply) => {
    result.handshake = reply;
    if (!reply.successful) {
        result.errors.push("handshake failed");
        finish(1);
        return;
    }
    cometd.subscribe(
        "/v2/me/calls",
        (message) => {
            if (result.message !== null) {
                return;
            }
            result.message = message;
            cometd.disconnect((disconnectReply) => {
                result.disconnect = disconnectReply;
                finish(0);
            });
        },
        (subscribeReply) => {
            result.subscribe = subscribeReply;
            if (!subscribeReply.successful) {
                result.errors.push("subscribe failed");
                finish(1);
                return;
            }
            process.stdout.write(JSON.stringify({ ready: true, clientId: cometd.getClientId() }) + "\n");
        },
    );
});
