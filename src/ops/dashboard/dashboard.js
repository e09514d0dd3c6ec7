/*
 * mod_wsock live status (SetHandler wsock-status).  Reads the stream on
 * the page's own URL: {"type":"history"} once, then {"type":"snapshot"}
 * about once a second; samples are rows of the same columns (cumulative
 * totals and gauges, one per second), rates are their differences.
 *
 * Room and location names come from clients and from the configuration:
 * they only ever go into text nodes (textContent), never into markup.
 * Every rendered number also sits in a data-value attribute, for tests.
 */
'use strict';
(function () {
    const WINDOW = 600;                 /* seconds drawn and summed */
    const RETRY_MAX = 10000;            /* ms between reconnects, at most */
    let columns = null;
    let col = {};
    let rows = [];                      /* oldest first, one per second at most */
    let roomsAt = new Map();            /* second -> {room name: members} */
    let roomsNow = [];                  /* the newest snapshot's rooms */
    let retry = 500;
    let since = null;                   /* when the server's totals started */

    const $ = (id) => document.getElementById(id);

    function show(el, v) {
        el.textContent = String(v);
        el.dataset.value = String(v);
    }

    function streamUrl() {
        const base = document.body.dataset.stream || '';
        return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
            (base === '' ? '/' : base);
    }

    function setColumns(c) {
        if (!Array.isArray(c)) {
            return;
        }
        if (columns && columns.join() !== c.join()) {
            rows = [];                  /* a server of another layout */
            roomsAt = new Map();
        }
        columns = c;
        col = {};
        c.forEach((name, i) => { col[name] = i; });
    }

    function addRow(r) {
        if (!Array.isArray(r) || r.length !== columns.length) {
            return;
        }
        const t = r[0];
        let i = rows.length;
        while (i > 0 && rows[i - 1][0] > t) {
            i--;
        }
        if (i > 0 && rows[i - 1][0] === t) {
            rows[i - 1] = r;            /* a later reading of that second */
        }
        else {
            rows.splice(i, 0, r);
        }
        const oldest = rows[rows.length - 1][0] - WINDOW;
        while (rows.length && rows[0][0] <= oldest) {
            rows.shift();
        }
        for (const k of roomsAt.keys()) {
            if (k <= oldest) {
                roomsAt.delete(k);
            }
        }
    }

    /* rooms: [[name, members], ...] or [{name, members}, ...] at second t */
    function addRooms(t, rooms) {
        const m = Object.create(null);
        (Array.isArray(rooms) ? rooms : []).forEach((r) => {
            const name = Array.isArray(r) ? r[0] : r.name;
            const members = Array.isArray(r) ? r[1] : r.members;
            if (typeof name === 'string' && typeof members === 'number') {
                m[name] = members;
            }
        });
        roomsAt.set(t, m);
    }

    function value(r, name) {
        return r[col[name]] || 0;
    }

    /* Per-second rates of a total between neighbouring samples. */
    function rates(name) {
        const out = [];
        for (let i = 1; i < rows.length; i++) {
            const dt = rows[i][0] - rows[i - 1][0];
            const dv = value(rows[i], name) - value(rows[i - 1], name);
            out.push([rows[i][0], dt > 0 && dv >= 0 ? dv / dt : 0]);
        }
        return out;
    }

    function sumOf(names, r) {
        return names.reduce((s, n) => s + value(r, n), 0);
    }

    function ratesOfSum(names) {
        const out = [];
        for (let i = 1; i < rows.length; i++) {
            const dt = rows[i][0] - rows[i - 1][0];
            const dv = sumOf(names, rows[i]) - sumOf(names, rows[i - 1]);
            out.push([rows[i][0], dt > 0 && dv >= 0 ? dv / dt : 0]);
        }
        return out;
    }

    function fmt(v) {
        if (v >= 1e6) {
            return (v / 1e6).toFixed(1) + 'M';
        }
        if (v >= 1e4) {
            return (v / 1e3).toFixed(1) + 'k';
        }
        return Number.isInteger(v) ? String(v) : v.toFixed(1);
    }

    /* A line chart of series (arrays of [t, v]) over the last WINDOW s. */
    function chart(canvas, series) {
        const ratio = window.devicePixelRatio || 1;
        const w = canvas.clientWidth || canvas.width;
        const h = canvas.clientHeight || canvas.height;
        canvas.width = Math.round(w * ratio);
        canvas.height = Math.round(h * ratio);
        const g = canvas.getContext('2d');
        g.setTransform(ratio, 0, 0, ratio, 0, 0);
        g.clearRect(0, 0, w, h);
        const styles = getComputedStyle(document.documentElement);
        const colours = [0, 1, 2, 3, 4].map((i) => styles.getPropertyValue('--k' + i));
        const tmax = rows.length ? rows[rows.length - 1][0] : 0;
        const tmin = tmax - WINDOW;
        let max = 1;
        series.forEach((s) => s.forEach((p) => { max = Math.max(max, p[1]); }));
        const left = 40, top = 8, bottom = h - 18, right = w - 6;
        g.strokeStyle = styles.getPropertyValue('--line');
        g.fillStyle = styles.getPropertyValue('--muted');
        g.font = '11px system-ui, sans-serif';
        g.lineWidth = 1;
        [0, 0.5, 1].forEach((f) => {
            const y = bottom - f * (bottom - top);
            g.beginPath();
            g.moveTo(left, y);
            g.lineTo(right, y);
            g.stroke();
            g.fillText(fmt(max * f), 2, y + 4);
        });
        g.fillText('-10 min', left, h - 4);
        g.fillText('now', right - 22, h - 4);
        series.forEach((s, k) => {
            g.strokeStyle = colours[k % colours.length];
            g.lineWidth = 2;
            g.beginPath();
            let gap = true;
            s.forEach((p) => {
                if (p[1] === null) {        /* not known then: a gap */
                    gap = true;
                    return;
                }
                const x = left + (p[0] - tmin) / WINDOW * (right - left);
                const y = bottom - p[1] / max * (bottom - top);
                if (gap) {
                    g.moveTo(x, y);
                }
                else {
                    g.lineTo(x, y);
                }
                gap = false;
            });
            g.stroke();
            if (s.length && s[s.length - 1][1] !== null) {  /* the newest value, as a dot */
                const p = s[s.length - 1];
                g.fillStyle = colours[k % colours.length];
                g.beginPath();
                g.arc(left + (p[0] - tmin) / WINDOW * (right - left),
                      bottom - p[1] / max * (bottom - top), 3.5, 0, 2 * Math.PI);
                g.fill();
            }
        });
        const first = series[0] || [];
        canvas.dataset.points = String(first.length);
        canvas.dataset.last = first.length ? String(first[first.length - 1][1]) : '';
        canvas.dataset.lasts = series.map((s) => s.length ? s[s.length - 1][1] : '').join(',');
        canvas.dataset.max = String(max);
    }

    function cell(tr, text, cls) {
        const td = document.createElement('td');
        td.textContent = String(text);
        if (cls) {
            td.className = cls;
        }
        tr.appendChild(td);
        return td;
    }

    function barCell(tr, v, max) {
        const td = document.createElement('td');
        const bar = document.createElement('div');
        bar.className = 'bar';
        bar.style.width = (max > 0 ? Math.round(v / max * 100) : 0) + '%';
        td.appendChild(bar);
        tr.appendChild(td);
    }

    function fill(table, items, render, empty) {
        const body = table.tBodies[0];
        const trs = items.map((it) => {
            const tr = document.createElement('tr');
            render(tr, it);
            return tr;
        });
        if (!trs.length) {
            const tr = document.createElement('tr');
            const td = cell(tr, empty, 'empty');
            td.colSpan = table.tHead.rows[0].cells.length;
            trs.push(tr);
        }
        body.replaceChildren(...trs);
        table.dataset.rows = String(items.length);
    }

    /* What the window's counts are measured from: its oldest sample, or
     * nothing at all when the server's totals started within the window
     * (what happened before its first sample counts too). */
    function baseline() {
        const last = rows[rows.length - 1];
        if (since !== null && since >= last[0] - WINDOW) {
            return columns.map(() => 0);
        }
        return rows[0];
    }

    function renderSeries() {
        if (!columns || !rows.length) {
            return;
        }
        const first = baseline(), last = rows[rows.length - 1];
        const closeCols = columns.filter((c) => c.startsWith('closed_'));
        const refusalCols = columns.filter((c) => c.startsWith('refused_'));
        const span = last[0] - (first[0] || since);
        const label = span >= 60 ? Math.round(span / 60) + ' min' : span + ' s';
        document.querySelectorAll('.window').forEach((el) => { el.textContent = label; });
        const inR = rates('messages_in'), outR = rates('messages_out');
        show($('v-in-rate'), inR.length ? fmt(inR[inR.length - 1][1]) : 0);
        show($('v-out-rate'), outR.length ? fmt(outR[outR.length - 1][1]) : 0);
        show($('v-refused-window'), sumOf(refusalCols, last) - sumOf(refusalCols, first));
        show($('v-closed-window'), sumOf(closeCols, last) - sumOf(closeCols, first));
        chart($('c-open'), [rows.map((r) => [r[0], value(r, 'open')])]);
        chart($('c-msgs'), [inR, outR]);
        chart($('c-events'), [ratesOfSum(refusalCols), ratesOfSum(closeCols)]);
        renderRoomChart();
        const closes = closeCols.map((c) => ({
            code: c.slice(7), recent: value(last, c) - value(first, c), total: value(last, c)
        })).filter((c) => c.total > 0);
        const cmax = Math.max(0, ...closes.map((c) => c.recent));
        fill($('t-closes'), closes, (tr, c) => {
            tr.dataset.code = c.code;
            cell(tr, c.code);
            cell(tr, c.recent, 'num').dataset.value = String(c.recent);
            cell(tr, c.total, 'num').dataset.value = String(c.total);
            barCell(tr, c.recent, cmax);
        }, 'no WebSocket closed yet');
    }

    /* The five largest rooms of now, over the window: a second where a room
     * was not among the largest kept is a gap, not a zero. */
    function renderRoomChart() {
        const top = roomsNow.slice(0, 5).map((r) => r.name);
        const times = rows.map((r) => r[0]);
        chart($('c-rooms'), top.map((name) => times.map((t) => {
            const m = roomsAt.get(t);
            return [t, m && name in m ? m[name] : null];
        })));
        const legend = $('rooms-legend');
        legend.replaceChildren(...top.map((name, i) => {
            const span = document.createElement('span');
            span.className = 'key k' + i;
            span.textContent = name;
            return span;
        }));
        legend.dataset.rooms = String(top.length);
    }

    function renderSnapshot(s) {
        if (s.counting === false) {     /* no shared memory: the error log says why */
            const state = $('state');
            state.textContent = 'live, but the server counts nothing (WSOCK1401 in its error log)';
            state.dataset.state = 'not-counting';
        }
        show($('v-open'), s.open);
        show($('v-children'), s.children);
        show($('v-rooms'), (s.gauges && s.gauges.rooms) || 0);
        show($('v-members'), (s.gauges && s.gauges.room_members) || 0);
        $('since').textContent = new Date(s.since * 1000).toISOString();
        $('updated').textContent = 'updated ' + new Date(s.time_ms).toLocaleTimeString();
        const first = rows.length ? baseline() : null;
        const refusals = Object.keys(s.refused || {}).map((reason) => ({
            reason: reason,
            statuses: s.refused[reason],
            total: Object.values(s.refused[reason]).reduce((a, b) => a + b, 0),
            recent: first && col['refused_' + reason] !== undefined
                ? Math.max(0, value(rows[rows.length - 1], 'refused_' + reason) -
                           value(first, 'refused_' + reason)) : 0
        }));
        fill($('t-refusals'), refusals, (tr, r) => {
            tr.dataset.reason = r.reason;
            cell(tr, r.reason);
            cell(tr, r.recent, 'num').dataset.value = String(r.recent);
            cell(tr, r.total, 'num').dataset.value = String(r.total);
            cell(tr, Object.keys(r.statuses).map((k) => k + ' \u00d7 ' + r.statuses[k]).join(', '));
        }, 'no handshake refused yet');
        const rooms = Array.isArray(s.rooms) ? s.rooms : [];
        const rmax = Math.max(0, ...rooms.map((r) => r.members));
        fill($('t-rooms'), rooms, (tr, r) => {
            tr.className = 'room';
            cell(tr, r.name, 'name');
            cell(tr, r.members, 'num members').dataset.value = String(r.members);
            barCell(tr, r.members, rmax);
        }, 'no rooms');
        const locs = Array.isArray(s.locations) ? s.locations : [];
        fill($('t-locations'), locs, (tr, l) => {
            tr.className = 'location';
            cell(tr, l.location, 'name');
            cell(tr, l.handler);
            cell(tr, l.open, 'num open').dataset.value = String(l.open);
            cell(tr, l.opened, 'num opened').dataset.value = String(l.opened);
        }, 'no WebSocket locations');
        document.body.dataset.snapshotTime = String(s.time_ms);
        document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots || 0) + 1);
    }

    function onMessage(ev) {
        let m;
        try {
            m = JSON.parse(ev.data);
        }
        catch (e) {
            return;
        }
        if (m.type === 'history') {
            setColumns(m.columns);
            let before = null;          /* a row's rooms: null = as the row before */
            (m.rows || []).forEach((r, i) => {
                addRow(r);
                if (Array.isArray(m.rooms) && Array.isArray(r)) {
                    before = m.rooms[i] === null ? before : m.rooms[i];
                    addRooms(r[0], before);
                }
            });
            document.body.dataset.historyRows = String((m.rows || []).length);
            renderSeries();
        }
        else if (m.type === 'snapshot') {
            since = typeof m.since === 'number' ? m.since : null;
            setColumns(m.columns);
            roomsNow = Array.isArray(m.rooms) ? m.rooms : [];
            addRow(m.sample);
            if (Array.isArray(m.sample)) {
                addRooms(m.sample[0], roomsNow);
            }
            renderSeries();
            renderSnapshot(m);
        }
    }

    function connect() {
        const state = $('state');
        const ws = new WebSocket(streamUrl());
        ws.onopen = () => {
            retry = 500;
            state.textContent = 'live';
            state.dataset.state = 'live';
        };
        ws.onmessage = onMessage;
        ws.onclose = () => {
            state.textContent = 'disconnected, retrying';
            state.dataset.state = 'disconnected';
            setTimeout(connect, retry);
            retry = Math.min(retry * 2, RETRY_MAX);
        };
    }

    connect();
})();
