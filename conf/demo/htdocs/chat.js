// The mod_wsock chat page: talks to the chat handler's JSON (docs/chat.md).
// Everything that came from the network is shown with textContent, never
// parsed as HTML.
"use strict";
(function () {
  const ROOM_RE = /^[A-Za-z0-9_.-]{1,64}$/;
  const FIRST_DELAY = 500, MAX_DELAY = 30000;   // reconnect back-off, ms
  const MAX_LINES = 500;                        // the log keeps the latest

  const $ = (id) => document.getElementById(id);
  const stateEl = $("state"), logEl = $("log"), membersEl = $("members");
  const roomInput = $("room"), msgInput = $("msg"), sendBtn = $("send");

  let ws = null, me = null, attempt = 0, retryTimer = null, tick = null;
  let room = new URLSearchParams(location.search).get("room") || "lobby";
  if (!ROOM_RE.test(room)) room = "lobby";
  roomInput.value = room;

  function endpoint() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + location.host + "/chat?room=" + encodeURIComponent(room);
  }

  function setState(state, text) {
    stateEl.dataset.state = state;
    stateEl.textContent = text;
    const open = state === "open";
    msgInput.disabled = sendBtn.disabled = !open;
  }

  function setMembers(count) {
    membersEl.textContent = count === 1 ? "1 member" : count + " members";
  }

  // One line of the log: [sender] text, both as text nodes.
  function addLine(text, opts) {
    const o = opts || {};
    const li = document.createElement("li");
    const atBottom = logEl.scrollHeight - logEl.scrollTop - logEl.clientHeight < 40;
    if (o.cls) li.className = o.cls;
    if (o.from !== undefined) {
      const from = document.createElement("span");
      from.className = "from";
      from.textContent = o.from === me ? "you" : o.from;
      li.appendChild(from);
      if (o.from === me) li.classList.add("mine");
    }
    li.appendChild(document.createTextNode(text));
    logEl.appendChild(li);
    while (logEl.children.length > MAX_LINES) logEl.removeChild(logEl.firstChild);
    if (atBottom || o.from === me) logEl.scrollTop = logEl.scrollHeight;
  }

  const notice = (text) => addLine(text, { cls: "notice" });

  function onServerMessage(e) {
    if (typeof e.data !== "string") {
      notice("(a binary message of " + e.data.byteLength + " bytes)");
      return;
    }
    let m;
    try {
      m = JSON.parse(e.data);
    } catch (err) {
      notice("(an unreadable message)");
      return;
    }
    switch (m.type) {
      case "welcome":
        me = String(m.member);
        setState("open", "Connected as " + me);
        setMembers(m.count);
        notice("You joined room " + m.room + " as " + me + ".");
        break;
      case "join":
        setMembers(m.count);
        notice(m.member + " joined.");
        break;
      case "leave":
        setMembers(m.count);
        notice(m.member + " left.");
        break;
      case "message":
        addLine(String(m.data), { from: String(m.from) });
        break;
      default:
        break;                                  // newer servers may say more
    }
  }

  function connect() {
    clearTimeout(retryTimer);
    clearInterval(tick);
    setState("connecting", "Connecting…");
    const sock = new WebSocket(endpoint());
    sock.binaryType = "arraybuffer";
    ws = sock;
    sock.onopen = () => { attempt = 0; setState("open", "Connected"); };
    sock.onmessage = onServerMessage;
    sock.onclose = (e) => {
      if (ws !== sock) return;                  // replaced on purpose (room change)
      ws = null;
      membersEl.textContent = "";
      if (attempt === 0) {
        notice("Connection lost (" + e.code + (e.reason ? " " + e.reason : "") + ").");
      }
      scheduleRetry(e.code);
    };
  }

  // Exponential back-off with jitter: 0.5 s, 1 s, 2 s ... up to 30 s, each
  // between half and all of that, so that clients that lost the same
  // server do not all come back at the same moment.
  function scheduleRetry(code) {
    const cap = Math.min(MAX_DELAY, FIRST_DELAY * 2 ** attempt++);
    const due = Date.now() + cap / 2 + Math.random() * cap / 2;
    const show = () => {
      const s = Math.max(0, Math.ceil((due - Date.now()) / 1000));
      setState("closed", "Disconnected (" + code + "), reconnecting in " + s + " s…");
    };
    show();
    tick = setInterval(show, 250);
    retryTimer = setTimeout(connect, due - Date.now());
  }

  $("room-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const next = roomInput.value.trim();
    if (!ROOM_RE.test(next)) {
      roomInput.setCustomValidity("1 to 64 letters, digits, _ . -");
      roomInput.reportValidity();
      return;
    }
    roomInput.setCustomValidity("");
    if (next === room && ws) return;
    room = next;
    history.replaceState(null, "", "?room=" + encodeURIComponent(room));
    logEl.textContent = "";
    const old = ws;
    ws = null;
    if (old) old.close(1000, "changing room");
    attempt = 0;
    connect();
  });

  $("send-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = msgInput.value;
    if (ws && ws.readyState === WebSocket.OPEN && text) {
      ws.send(text);
      msgInput.value = "";
    }
    msgInput.focus();
  });

  connect();
})();
