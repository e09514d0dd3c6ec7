// A WebSocket application in Node behind mod_wsock's backend handler, written
// with Fanout's GRIP library (npm @fanoutio/grip), the one Pushpin apps use:
//
//     WSockHandler backend http://127.0.0.1:8083/ws
//
//     node examples/node/backend.mjs 8083
//
// (run it where node_modules has @fanoutio/grip; the tests use tests/node).
// It speaks WebSocket-over-HTTP with the GRIP extension: it subscribes
// clients to channels (mod_wsock rooms "<location>?<channel>", which the
// publish endpoint reaches with ?location=<location>&room=<channel>).
//   OPEN:  accepts, subscribes the client to ?channel= (default "lobby").
//   TEXT:  "join X" / "leave X" subscribe / unsubscribe channel X;
//          "bye" closes the client with 4000; anything else is echoed
//          as "node: <text>".
import http from 'node:http';
import { isNodeReqWsOverHttp, getWebSocketContextFromNodeReq, encodeWebSocketEvents }
    from '@fanoutio/grip';

const port = Number(process.argv[2] || 8083);

const server = http.createServer(async (req, res) => {
    if (!isNodeReqWsOverHttp(req)) {
        res.writeHead(400, { 'Content-Type': 'text/plain' });
        res.end('not WebSocket-over-HTTP\n');
        return;
    }
    const ws = await getWebSocketContextFromNodeReq(req);
    if (ws.isOpening()) {
        ws.accept();
        const uri = new URL(req.headers['wsock-uri'] || '/', 'http://x');
        ws.subscribe(uri.searchParams.get('channel') || 'lobby');
    }
    while (ws.canRecv()) {
        const msg = ws.recv();
        if (msg == null) {              // the client closed
            ws.close();
            break;
        }
        const m = /^(join|leave) (\S+)$/.exec(msg);
        if (m && m[1] === 'join') {
            ws.subscribe(m[2]);
            ws.send(`joined ${m[2]}`);
        } else if (m) {
            ws.unsubscribe(m[2]);
            ws.send(`left ${m[2]}`);
        } else if (msg === 'bye') {
            ws.close(4000);
        } else {
            ws.send(`node: ${msg}`);
        }
    }
    const events = ws.getOutgoingEvents();
    res.writeHead(200, ws.toHeaders());
    res.end(Buffer.from(encodeWebSocketEvents(events)));
});
server.keepAliveTimeout = 60000;
server.listen(port, '127.0.0.1', () => console.log(`LISTENING ${port}`));
