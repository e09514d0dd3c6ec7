// redis-fanout.js — load generator for the Redis relay (issue 5): one sender,
// R receivers in one room, the receivers spread over several mod_wsock
// servers that share one Redis.
//
//   node redis-fanout.js SENDER_URL RECEIVER_URL... -- RECEIVERS RATE SECONDS WARMUP
//
// The relay wraps every message in JSON ({"type":"message","from":...,
// "data":...}), so this client is JavaScript (Node's ws) rather than the
// C fanout: it parses each delivery.  The sender sends RATE text messages a
// second, each "SEQ:SENT_AT_MS_AS_FLOAT"; each receiver checks that it gets
// every message exactly once and in order, and records send -> arrival
// latency.  Deliveries in the measured window (after WARMUP) count.  One
// JavaScript thread does all of it, so at high rates the client, not the
// servers, is the limit: its own CPU is printed for that reason.
//
// Output: a human summary and one line `RESULT key=value ...`.  Exit status
// 1 if anything was lost (a gap: out of order), duplicated or refused, or a connection
// failed.  Every wait is bounded.
'use strict';

const WebSocket = require('ws');

const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
if (sep < 2 || argv.length - sep - 1 !== 4) {
    console.error('usage: redis-fanout.js SENDER_URL RECEIVER_URL... -- RECEIVERS RATE SECONDS WARMUP');
    process.exit(2);
}
const senderUrl = argv[0];
const receiverUrls = argv.slice(1, sep);
const [receivers, rate, seconds, warmup] = argv.slice(sep + 1).map(Number);
for (const u of [senderUrl, ...receiverUrls]) {
    if (!/^ws:\/\/127\.\d+\.\d+\.\d+:\d+\//.test(u)) {
        console.error('loopback ws:// URLs only: ' + u);
        process.exit(2);
    }
}

const now = () => Number(process.hrtime.bigint()) / 1e6;        // ms
const latencies = [];
let delivered = 0, lost = 0, duplicated = 0, refused = 0, failed = 0;
let measureFrom = Infinity, measureTo = Infinity;

function open(url) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { perMessageDeflate: false });
        const timer = setTimeout(() => { ws.terminate(); reject(new Error('connect timeout')); },
                                 15000);
        ws.once('message', (m) => {                                // the welcome
            clearTimeout(timer);
            const w = JSON.parse(m);
            if (w.type !== 'welcome') {
                reject(new Error('first message is not a welcome: ' + m));
            }
            else {
                resolve(ws);
            }
        });
        ws.once('error', (e) => { clearTimeout(timer); reject(e); });
    });
}

function receiver(ws) {
    let next = 0;
    ws.on('message', (raw) => {
        const m = JSON.parse(raw);
        if (m.type === 'dropped') {
            refused++;
            return;
        }
        if (m.type !== 'message') {
            return;                     // relay state notices
        }
        const [seqText, sentText] = m.data.split(':');
        const seq = Number(seqText), t = now();
        if (seq < next) {
            duplicated++;           // again, or late after a gap (counted lost)
            return;
        }
        if (seq > next) {
            lost += seq - next;     // a gap: with one sender, order is kept or lost
        }
        next = seq + 1;
        if (t >= measureFrom && t < measureTo) {
            delivered++;
            latencies.push(t - Number(sentText));
        }
    });
    ws.on('close', () => {});
    return () => next;
}

function pct(sorted, p) {
    if (sorted.length === 0) {
        return 0;
    }
    return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function main() {
    const conns = [], nexts = [];
    for (let i = 0; i < receivers; i++) {
        try {
            const ws = await open(receiverUrls[i % receiverUrls.length]);
            conns.push(ws);
            nexts.push(receiver(ws));
        }
        catch (e) {
            failed++;
            console.error('receiver ' + i + ': ' + e.message);
        }
    }
    const sender = await open(senderUrl);
    const cpu0 = process.cpuUsage();
    const start = now();
    measureFrom = start + warmup * 1000;
    measureTo = measureFrom + seconds * 1000;
    let sent = 0;
    await new Promise((resolve) => {
        const tick = setInterval(() => {
            const due = Math.floor((now() - start) * rate / 1000);
            while (sent < due && now() < measureTo) {
                sender.send(sent + ':' + now());
                sent++;
            }
            if (now() >= measureTo) {
                clearInterval(tick);
                resolve();
            }
        }, 1);
    });
    // Bounded wait for what is still on its way.
    const deadline = now() + 5000;
    while (now() < deadline && nexts.some((n) => n() < sent)) {
        await new Promise((r) => setTimeout(r, 20));
    }
    for (const n of nexts) {
        if (n() < sent) {
            lost += sent - n();
        }
    }
    const cpu = process.cpuUsage(cpu0);
    const wall = now() - start;
    latencies.sort((a, b) => a - b);
    const perSec = delivered / seconds;
    const cpuPct = Math.round(100 * (cpu.user + cpu.system) / 1000 / wall);
    console.log(`redis-fanout: ${conns.length} receivers over ${receiverUrls.length} server(s), ` +
                `${rate} msgs/s for ${warmup} s + ${seconds} s`);
    console.log(`  delivered   ${Math.round(perSec)} deliveries/s (${delivered} in the window)`);
    console.log(`  latency ms  p50 ${pct(latencies, 0.5).toFixed(2)}  p99 ${pct(latencies, 0.99).toFixed(2)}` +
                `  max ${latencies.length ? latencies[latencies.length - 1].toFixed(2) : 0}`);
    console.log(`  errors      lost ${lost}  duplicated ${duplicated}` +
                `  refused ${refused}  failed ${failed}`);
    console.log(`  client CPU  ${cpuPct}% of one core`);
    const errors = lost + duplicated + refused + failed;
    console.log(`RESULT receivers=${conns.length} servers=${receiverUrls.length} rate=${rate} ` +
                `sent=${sent} deliveries_per_sec=${Math.round(perSec)} ` +
                `p50_ms=${pct(latencies, 0.5).toFixed(2)} p99_ms=${pct(latencies, 0.99).toFixed(2)} ` +
                `lost=${lost} duplicated=${duplicated} refused=${refused} ` +
                `failed=${failed} client_cpu_pct=${cpuPct} errors=${errors} ok=${errors ? 0 : 1}`);
    for (const ws of [sender, ...conns]) {
        ws.terminate();
    }
    process.exit(errors ? 1 : 0);
}

const guard = setTimeout(() => { console.error('redis-fanout: overall timeout'); process.exit(1); },
                         (warmup + seconds + 120) * 1000);
guard.unref();
main().catch((e) => { console.error('redis-fanout: ' + e.message); process.exit(1); });
