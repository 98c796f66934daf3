// The chat page: the chat contract (docs/protocol.md) spoken with the socket.io-client bundle the
// server serves at /socket.io/socket.io.js. No framework and no build step: state in a few plain
// objects, rendered into the DOM with textContent only (user text is never parsed as HTML).
//
// Rooms the user has joined are remembered in localStorage with the newest message id seen in
// each. On every connect (the first and each automatic reconnect) every remembered room is
// joined again with `since` = the newest id this page holds: `missed` fills the gap, merged by
// id, so nothing is lost or shown twice.

const WAIT_MS = 10_000; // how long a command may wait for its acknowledgement
const TYPING_IDLE_MS = 3_000; // we stop "typing" after this long without a key
const TYPING_REPEAT_MS = 4_000; // while typing, the signal is sent again this often
const TYPING_SHOWN_MS = 6_000; // someone else's typing is forgotten after this without news
const PRESENCE_EVERY_MS = 10_000; // presence is asked again this often (comings online are not events)
const MISSED_MAX = 100; // join { since } returns at most this many: a full page means a gap
const GROUP_MS = 5 * 60_000; // one author's messages this close together share a header

const $ = (id) => document.getElementById(id);
const transports = { polling: ["polling"], websocket: ["websocket"] }[
  new URLSearchParams(location.search).get("transport")
];

let socket = null;
let me = null; // { id, name, auth }
let current = null; // the open room's name
const rooms = new Map(); // name -> room(), in the order joined
let pending = null; // the last message that failed: { room, text, clientId }, resent with its id
let editing = null; // the id of the message being edited
let typingSent = 0; // when we last said we were typing (0: we are not)
let typingIdle = null;
let lastError = null; // the code of the last `error` event

function room(name, seen = null) {
  return {
    name,
    seen, // the newest message id the user has seen here (remembered)
    messages: [], // sorted by id; empty until loaded
    loaded: false,
    loading: false,
    hasMore: false,
    loadingOlder: false,
    members: [], // the first members (up to 100), online or not, as `join` gave them
    memberCount: 0, // from `join`, then `user_joined`/`user_left` (small rooms) or `member_count` (large)
    online: new Map(), // id -> user, from `presence` (its first page)
    onlineCount: 0, // from `presence`
    typing: new Map(), // id -> { user, timer }
    reads: new Map(), // id -> { user, messageId }, from `read` events
    readSent: null,
    unread: 0,
  };
}

// ---------------------------------------------------------------------------------------------
// Identity and what is remembered

const storeKey = () => `chatoxide:rooms:${me.id}`;

function save() {
  const seen = Object.fromEntries([...rooms.values()].map((r) => [r.name, r.seen]));
  localStorage.setItem(storeKey(), JSON.stringify({ current, rooms: seen }));
}

function restore() {
  let data = null;
  try {
    data = JSON.parse(localStorage.getItem(storeKey()) ?? "null");
  } catch {
    data = null;
  }
  rooms.clear();
  for (const [name, seen] of Object.entries(data?.rooms ?? {})) {
    rooms.set(name, room(name, typeof seen === "string" ? seen : null));
  }
  current = rooms.has(data?.current) ? data.current : (rooms.keys().next().value ?? null);
}

/** A JWT's claims, read (not verified: the server does that) to know who we are. */
function claims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return {};
  }
}

function identity(name, token) {
  if (token) {
    const { sub, name: shown } = claims(token);
    if (typeof sub !== "string") return null;
    return { id: sub, name: typeof shown === "string" ? shown : sub, auth: { token } };
  }
  return name ? { id: name, name, auth: { username: name } } : null;
}

/** The server's mode (`/chat-config.json`): a name in open mode, a token in token mode. */
let tokenMode = false;

async function learnMode() {
  try {
    const config = await (await fetch("/chat-config.json", { cache: "no-cache" })).json();
    tokenMode = config.auth === "token";
  } catch {
    // An older server or a proxy in the way: offer the name, as open mode does.
    tokenMode = false;
  }
  $("name-box").hidden = tokenMode;
  $("token-box").hidden = !tokenMode;
  $("login-intro").textContent = tokenMode
    ? "A Socket.IO chat server in Rust. Paste your token to start."
    : "A Socket.IO chat server in Rust. Pick a name to start.";
}

function showLogin(message = "") {
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("name").value = localStorage.getItem("chatoxide:name") ?? "";
  $("token").value = sessionStorage.getItem("chatoxide:token") ?? "";
  (tokenMode ? $("token") : $("name")).focus();
}

function signOut(message = "") {
  const closing = socket;
  socket = null;
  closing?.disconnect();
  me = null;
  localStorage.removeItem("chatoxide:signed-in");
  sessionStorage.removeItem("chatoxide:token");
  showLogin(message);
}

// ---------------------------------------------------------------------------------------------
// The connection

function start(who) {
  me = who;
  restore();
  $("login").hidden = true;
  $("app").hidden = false;
  $("me").textContent = me.name;
  renderAll("bottom");
  socket = io({ auth: me.auth, transports });
  socket.on("connect", onConnect);
  socket.on("disconnect", onDisconnect);
  socket.on("connect_error", onConnectError);
  socket.io.on("reconnect_attempt", () => setStatus("reconnecting", "reconnecting…"));
  socket.on("message", onMessage);
  socket.on("message_updated", (m) => replace(m.room, m.id, () => m));
  socket.on("message_deleted", ({ room: name, message_id: id }) =>
    replace(name, id, (m) => ({ ...m, text: undefined, deleted: true })),
  );
  socket.on("user_joined", onUserJoined);
  socket.on("user_left", onUserLeft);
  socket.on("member_count", onMemberCount);
  socket.on("typing", onTyping);
  socket.on("read", onRead);
  socket.on("error", (e) => {
    lastError = e?.code ?? null;
    showError(e);
  });
}

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
  renderComposer();
}

function showTransport() {
  const name = socket?.io.engine?.transport?.name;
  setStatus("online", name === "websocket" ? "online · WebSocket" : "online · polling");
}

async function onConnect() {
  lastError = null;
  showTransport();
  socket.io.engine.once("upgrade", showTransport);
  await Promise.all([...rooms.values()].map(rejoin));
  const open = rooms.get(current);
  if (open && !open.loaded) await loadLatest(open);
  if (open) await refreshPresence(open);
}

/** Joins a remembered room again, taking what was missed since the newest message held. */
async function rejoin(r) {
  const since = r.messages.at(-1)?.id ?? r.seen;
  let ack = await patiently("join", since ? { room: r.name, since } : { room: r.name });
  if (!ack.ok && ack.error.code === "not_found" && since) {
    ack = await patiently("join", { room: r.name }); // that id is gone (a new database)
  }
  if (!ack.ok) {
    if (["forbidden", "bad_request"].includes(ack.error.code)) forget(r.name);
    return showError(ack.error, `#${r.name}`);
  }
  r.members = ack.members ?? r.members;
  r.memberCount = ack.member_count ?? r.members.length;
  const missed = ack.missed ?? [];
  if (!r.loaded) {
    r.unread = missed.filter((m) => m.user.id !== me.id).length;
  } else if (missed.length >= MISSED_MAX) {
    Object.assign(r, { messages: [], loaded: false, hasMore: false }); // a gap: start over
    if (r.name === current) await loadLatest(r);
  } else {
    merge(r, missed);
  }
  if (r.name === current) renderMessages();
  renderRooms();
}

function onDisconnect(reason) {
  if (!socket) return; // signed out
  for (const r of rooms.values()) clearTyping(r);
  renderTyping();
  if (reason === "io server disconnect") {
    // The server ended the session: an expired token needs a new one, anything else may retry.
    if (lastError === "unauthorized") return signOut("Your session ended: sign in again.");
    setTimeout(() => socket?.connect(), 2_000);
  }
  setStatus("reconnecting", "reconnecting…");
}

function onConnectError(err) {
  if (socket?.active) return setStatus("offline", "offline · retrying");
  // Refused by the server: a bad name or token is final, the rest is worth another try.
  if (["unauthorized", "bad_request"].includes(err.message)) {
    return signOut(`The server refused you (${err.message}): check the name or token.`);
  }
  setStatus("offline", `refused (${err.message}) · retrying`);
  setTimeout(() => socket?.connect(), 3_000);
}

/** Sends a command and resolves with its acknowledgement, or a failure of our own. */
async function command(name, arg) {
  if (!socket?.connected) return failure("unavailable", "not connected to the server");
  try {
    const ack = await socket.timeout(WAIT_MS).emitWithAck(name, arg);
    return typeof ack?.ok === "boolean" ? ack : failure("internal", "an unexpected answer");
  } catch {
    return failure("timeout", "the server did not answer in time");
  }
}

/** As command(), waiting out `rate_limited` a few times (for what the page sends by itself). */
async function patiently(name, arg) {
  for (let attempt = 0; ; attempt++) {
    const ack = await command(name, arg);
    if (ack.ok || ack.error.code !== "rate_limited" || attempt === 4) return ack;
    await new Promise((r) => setTimeout(r, ack.error.retry_after_ms ?? 1_000));
  }
}

const failure = (code, message) => ({ ok: false, error: { code, message } });

// ---------------------------------------------------------------------------------------------
// Rooms and messages

/** Joins a room by name and opens it; false if the server said no. */
async function joinRoom(name) {
  name = name.trim();
  if (!name) return false;
  if (rooms.has(name)) return openRoom(name).then(() => true);
  const ack = await command("join", { room: name });
  if (!ack.ok) {
    showError(ack.error, `#${name}`);
    return false;
  }
  const r = rooms.get(ack.room) ?? room(ack.room);
  r.members = ack.members ?? [];
  r.memberCount = ack.member_count ?? r.members.length;
  rooms.set(r.name, r);
  await openRoom(r.name);
  return true;
}

async function leaveRoom() {
  const name = current;
  const ack = await command("leave", { room: name });
  if (!ack.ok) return showError(ack.error, `#${name}`);
  forget(name);
}

function forget(name) {
  rooms.delete(name);
  if (current === name) current = rooms.keys().next().value ?? null;
  save();
  renderAll();
  const open = rooms.get(current);
  if (open && !open.loaded) loadLatest(open);
}

async function openRoom(name) {
  stopTyping();
  cancelEdit();
  current = name;
  const r = rooms.get(name);
  r.unread = 0;
  save();
  renderAll("bottom");
  if (!r.loaded) await loadLatest(r);
  await refreshPresence(r);
  $("text").focus();
}

async function loadLatest(r) {
  r.loading = true; // messages that come meanwhile are kept: they may be newer than the page
  const ack = await patiently("history", { room: r.name });
  r.loading = false;
  if (!ack.ok) return showError(ack.error, `#${r.name}`);
  merge(r, ack.messages);
  Object.assign(r, { loaded: true, hasMore: ack.has_more, unread: 0 });
  if (r.name === current) renderMessages("bottom");
  await fillScreen(r);
}

async function loadOlder(r) {
  if (!r?.loaded || !r.hasMore || r.loadingOlder || !r.messages.length) return;
  r.loadingOlder = true;
  const ack = await patiently("history", { room: r.name, before: r.messages[0].id });
  r.loadingOlder = false;
  if (!ack.ok) return showError(ack.error, `#${r.name}`);
  merge(r, ack.messages);
  r.hasMore = ack.has_more;
  if (r.name === current) renderMessages("keep");
  await fillScreen(r);
}

/** Loads older pages while the list does not fill the pane, so scrolling up can ask for more. */
async function fillScreen(r) {
  const pane = $("messages");
  if (r.name === current && pane.scrollHeight <= pane.clientHeight) await loadOlder(r);
}

/** Puts messages in their place by id (ids sort in commit order within a room), replacing copies. */
function merge(r, list) {
  for (const m of list) {
    const all = r.messages;
    if (!all.length || all.at(-1).id < m.id) {
      all.push(m);
      continue;
    }
    const at = all.findIndex((x) => x.id >= m.id);
    all.splice(at, all[at].id === m.id ? 1 : 0, m);
  }
}

function replace(name, id, change) {
  const r = rooms.get(name);
  const at = r?.messages.findIndex((m) => m.id === id) ?? -1;
  if (at < 0) return;
  r.messages[at] = change(r.messages[at]);
  if (name === current) renderMessages();
}

function onMessage(m) {
  let r = rooms.get(m.room);
  if (!r) {
    // Another tab of ours joined it: the server put this socket in the room too.
    r = room(m.room);
    rooms.set(m.room, r);
    save();
  }
  forgetTyping(r, m.user.id);
  if (r.loaded || r.loading) merge(r, [m]);
  if (m.room !== current) r.unread += 1;
  else if (r.loaded) renderMessages();
  if (m.room === current && !r.online.has(m.user.id)) refreshPresence(r);
  renderRooms();
  renderTyping();
}

async function sendMessage(text) {
  const name = current;
  const retry = pending?.room === name && pending.text === text;
  const clientId = retry ? pending.clientId : `web-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  pending = { room: name, text, clientId };
  $("text").value = "";
  grow();
  stopTyping();
  const ack = await command("message", { room: name, text, client_id: clientId });
  if (!ack.ok) {
    if (!$("text").value) $("text").value = text; // kept, to send again (with the same client_id)
    return showError(ack.error);
  }
  pending = null;
  const r = rooms.get(name);
  if (r?.loaded) merge(r, [ack.message]);
  if (name === current) renderMessages("bottom");
}

async function saveEdit(text) {
  const id = editing;
  const ack = await command("edit", { message_id: id, text });
  if (!ack.ok) return showError(ack.error);
  cancelEdit();
  replace(ack.message.room, ack.message.id, () => ack.message);
}

async function deleteMessage(m) {
  if (!confirm("Delete this message?")) return;
  const ack = await command("delete", { message_id: m.id });
  if (!ack.ok) return showError(ack.error);
  replace(m.room, m.id, (old) => ({ ...old, text: undefined, deleted: true }));
}

function startEdit(m) {
  editing = m.id;
  $("editing").hidden = false;
  $("text").value = m.text;
  $("send").textContent = "Save";
  grow();
  $("text").focus();
}

function cancelEdit() {
  if (!editing) return;
  editing = null;
  $("editing").hidden = true;
  $("send").textContent = "Send";
  $("text").value = "";
  grow();
}

// ---------------------------------------------------------------------------------------------
// Members, presence, typing and read marks

async function refreshPresence(r) {
  const ack = await command("presence", { room: r.name });
  if (!ack.ok) return;
  r.online = new Map(ack.users.map((u) => [u.id, u]));
  r.onlineCount = ack.online_count ?? ack.users.length;
  if (r.name === current) renderPresence();
}

function onUserJoined({ room: name, user }) {
  if (user.id === me.id && !rooms.has(name)) {
    rooms.set(name, room(name)); // joined in another tab
    save();
  }
  const r = rooms.get(name);
  if (!r) return;
  if (!r.members.some((u) => u.id === user.id)) {
    r.members.push(user);
    r.memberCount += 1;
  }
  if (name === current) refreshPresence(r);
  renderAll();
}

// A large room tells its member count instead of each join and leave.
function onMemberCount({ room: name, member_count: count }) {
  const r = rooms.get(name);
  if (!r) return;
  r.memberCount = count;
  renderAll();
}

function onUserLeft({ room: name, user }) {
  if (user.id === me.id) return forget(name); // left in another tab
  const r = rooms.get(name);
  if (!r) return;
  r.members = r.members.filter((u) => u.id !== user.id);
  r.memberCount = Math.max(0, r.memberCount - 1);
  if (r.online.delete(user.id)) r.onlineCount = Math.max(0, r.onlineCount - 1);
  forgetTyping(r, user.id);
  renderAll();
}

function onTyping({ room: name, user, typing }) {
  const r = rooms.get(name);
  if (!r || user.id === me.id) return;
  forgetTyping(r, user.id);
  if (typing) {
    const timer = setTimeout(() => {
      forgetTyping(r, user.id);
      renderTyping();
    }, TYPING_SHOWN_MS);
    r.typing.set(user.id, { user, timer });
  }
  renderTyping();
}

function forgetTyping(r, id) {
  clearTimeout(r.typing.get(id)?.timer);
  r.typing.delete(id);
}

function clearTyping(r) {
  for (const id of [...r.typing.keys()]) forgetTyping(r, id);
}

/** Says we are typing (again every few seconds), and that we stopped after a pause. */
function typed() {
  if (!current || editing) return;
  if (Date.now() - typingSent > TYPING_REPEAT_MS) {
    typingSent = Date.now();
    command("typing", { room: current, typing: true });
  }
  clearTimeout(typingIdle);
  typingIdle = setTimeout(stopTyping, TYPING_IDLE_MS);
}

function stopTyping() {
  clearTimeout(typingIdle);
  if (typingSent && current) command("typing", { room: current, typing: false });
  typingSent = 0;
}

function onRead({ room: name, user, message_id: messageId }) {
  const r = rooms.get(name);
  if (!r || user.id === me.id) return;
  r.reads.set(user.id, { user, messageId });
  if (name === current) renderMessages();
}

/** The newest message is on screen: remember it, and tell the room we read it. */
function markSeen() {
  const r = rooms.get(current);
  const newest = r?.messages.at(-1);
  if (!newest || document.visibilityState !== "visible" || !atBottom()) return;
  if (r.seen !== newest.id) {
    r.seen = newest.id;
    save();
  }
  if (r.readSent !== newest.id && newest.user.id !== me.id) {
    r.readSent = newest.id;
    command("read", { room: r.name, message_id: newest.id }).then((ack) => ack.ok || showError(ack.error));
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering

/** An element with attributes and children; strings become text nodes, never HTML. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== false && value != null) node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c != null && c !== false));
  return node;
}

function avatar(user) {
  let hash = 0;
  for (const c of user.id) hash = (hash * 31 + c.codePointAt(0)) % 360;
  const initial = [...user.name][0]?.toUpperCase() ?? "?";
  const node = el("span", { class: "avatar", "aria-hidden": "true" }, initial);
  node.style.setProperty("--hue", hash);
  return node;
}

function renderAll(scroll = "auto") {
  renderRooms();
  renderHeader();
  renderPresence();
  renderMessages(scroll);
  renderTyping();
  renderComposer();
}

function renderRooms() {
  const items = [...rooms.values()].map((r) =>
    el(
      "li",
      {},
      el(
        "button",
        {
          class: r.name === current ? "room active" : "room",
          "data-testid": "room",
          "data-room": r.name,
          onclick: () => openRoom(r.name),
        },
        el("span", { class: "hash" }, "#"),
        el("span", { class: "room-name" }, r.name),
        r.unread > 0 && el("span", { class: "badge" }, r.unread >= MISSED_MAX ? "99+" : String(r.unread)),
      ),
    ),
  );
  $("rooms").replaceChildren(...items);
  const unread = [...rooms.values()].reduce((n, r) => n + r.unread, 0);
  document.title = `${unread ? `(${unread}) ` : ""}${current ? `#${current} · ` : ""}chatoxide`;
}

function renderHeader() {
  const r = rooms.get(current);
  $("room-title").textContent = r ? `# ${r.name}` : "No room";
  $("room-info").textContent = r ? `${r.memberCount} member${r.memberCount === 1 ? "" : "s"}` : "";
  $("leave").hidden = !r;
  $("empty").hidden = Boolean(r);
}

function renderPresence() {
  const r = rooms.get(current);
  const people = new Map((r?.members ?? []).map((u) => [u.id, u]));
  for (const [id, u] of r?.online ?? []) people.set(id, u);
  const sorted = [...people.values()].sort(
    (a, b) => Number(r.online.has(b.id)) - Number(r.online.has(a.id)) || a.name.localeCompare(b.name),
  );
  $("presence-title").textContent = r ? `Members · ${r.onlineCount} online` : "Members";
  $("presence").replaceChildren(
    ...sorted.map((u) =>
      el(
        "li",
        {
          class: "person",
          "data-testid": "presence-user",
          "data-user": u.id,
          "data-online": String(r.online.has(u.id)),
        },
        el("span", { class: "dot" }),
        el("span", { class: "person-name" }, u.name),
        u.id === me?.id && el("span", { class: "muted" }, " (you)"),
      ),
    ),
  );
}

function atBottom() {
  const pane = $("messages");
  return pane.scrollHeight - pane.scrollTop - pane.clientHeight < 40;
}

/** Redraws the open room's messages; `keep` holds the view still while older ones are added above. */
function renderMessages(scroll = "auto") {
  const pane = $("messages");
  const stick = scroll === "bottom" || atBottom();
  const fromBottom = pane.scrollHeight - pane.scrollTop;
  const r = rooms.get(current);
  const readers = new Map(); // message id -> names that read up to it
  for (const { user, messageId } of r?.reads.values() ?? []) {
    readers.set(messageId, [...(readers.get(messageId) ?? []), user.name]);
  }
  let previous = null;
  const items = (r?.messages ?? []).map((m) => {
    const item = renderMessage(m, previous, readers.get(m.id));
    previous = m;
    return item;
  });
  if (r?.loaded && !r.hasMore) {
    const title = el("strong", {}, `# ${r.name}`);
    items.unshift(el("li", { class: "room-start" }, title, "The beginning of this room's history."));
  }
  $("message-list").replaceChildren(...items);
  $("load-older").hidden = !r?.hasMore;
  if (scroll === "keep") pane.scrollTop = pane.scrollHeight - fromBottom;
  else if (stick) pane.scrollTop = pane.scrollHeight;
  markSeen();
}

function renderMessage(m, previous, readers) {
  const own = m.user.id === me.id;
  const at = new Date(m.created_at);
  const sameAuthor = previous && !previous.deleted && previous.user.id === m.user.id;
  const grouped = sameAuthor && at - new Date(previous.created_at) < GROUP_MS;
  const classes = ["message", own && "own", grouped && "grouped", m.deleted && "deleted"].filter(Boolean);
  return el(
    "li",
    { class: classes.join(" "), "data-testid": "message", "data-id": m.id, "data-user": m.user.id },
    grouped ? el("span", { class: "avatar-space" }) : avatar(m.user),
    el(
      "div",
      { class: "body" },
      !grouped &&
        el(
          "div",
          { class: "meta" },
          el("span", { class: "author" }, m.user.name),
          el("time", { datetime: m.created_at, title: at.toLocaleString() }, clock(at)),
        ),
      el(
        "div",
        { class: "text", "data-testid": "message-text" },
        m.deleted ? "message deleted" : m.text,
        m.edited_at && !m.deleted && el("span", { class: "edited" }, " (edited)"),
      ),
      readers && el("div", { class: "read-by", "data-testid": "read-by" }, `Read by ${readers.join(", ")}`),
    ),
    own &&
      !m.deleted &&
      el(
        "span",
        { class: "actions" },
        el("button", { class: "link", "data-testid": "edit", onclick: () => startEdit(m) }, "Edit"),
        el("button", { class: "link danger", "data-testid": "delete", onclick: () => deleteMessage(m) }, "Delete"),
      ),
  );
}

const clock = (date) => date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

function renderTyping() {
  const names = [...(rooms.get(current)?.typing.values() ?? [])].map((t) => t.user.name);
  const text =
    names.length === 0 ? "" :
    names.length === 1 ? `${names[0]} is typing…` :
    names.length <= 3 ? `${names.slice(0, -1).join(", ")} and ${names.at(-1)} are typing…` :
    "Several people are typing…";
  $("typing").textContent = text;
}

function renderComposer() {
  const usable = Boolean(socket?.connected && current);
  $("text").disabled = !usable;
  $("send").disabled = !usable;
  $("text").placeholder = current ? `Message #${current}` : "Join a room to write";
}

function grow() {
  const text = $("text");
  text.style.height = "auto";
  text.style.height = `${Math.min(text.scrollHeight, 160)}px`;
}

let toastTimer = null;
function showError(error, where = "") {
  const what = `${error?.message ?? "something went wrong"}${error?.code ? ` (${error.code})` : ""}`;
  $("toast").textContent = where ? `${where}: ${what}` : what;
  $("toast").hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => ($("toast").hidden = true), 6_000);
}

// ---------------------------------------------------------------------------------------------
// Wiring

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("name").value.trim();
  const token = tokenMode ? $("token").value.trim() : "";
  if (tokenMode && !token) return showLogin("Paste a token first.");
  const who = identity(name, token);
  if (!who) return showLogin(token ? "That token has no `sub` claim." : "Pick a name first.");
  localStorage.setItem("chatoxide:name", name);
  localStorage.setItem("chatoxide:signed-in", "1");
  if (token) sessionStorage.setItem("chatoxide:token", token);
  else sessionStorage.removeItem("chatoxide:token");
  start(who);
});

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("join-room").value;
  $("join-room").value = "";
  joinRoom(name).then((joined) => {
    if (!joined && !$("join-room").value) $("join-room").value = name; // kept, to correct
  });
});
$("join-general").addEventListener("click", () => joinRoom("general"));
$("leave").addEventListener("click", leaveRoom);
$("sign-out").addEventListener("click", () => signOut());
$("load-older").addEventListener("click", () => loadOlder(rooms.get(current)));
$("cancel-edit").addEventListener("click", cancelEdit);

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  if (editing) saveEdit(text);
  else sendMessage(text);
});
$("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  } else if (event.key === "Escape") {
    cancelEdit();
  }
});
$("text").addEventListener("input", () => {
  grow();
  if ($("text").value.trim()) typed();
});

$("messages").addEventListener("scroll", () => {
  if ($("messages").scrollTop < 60) loadOlder(rooms.get(current));
  markSeen();
});
document.addEventListener("visibilitychange", markSeen);
setInterval(() => {
  const r = rooms.get(current);
  if (r && socket?.connected) refreshPresence(r);
}, PRESENCE_EVERY_MS);

learnMode().then(() => {
  // Signed in already, while the mode was being fetched: one start is enough.
  if (socket) return;
  const name = localStorage.getItem("chatoxide:name") ?? "";
  const token = tokenMode ? (sessionStorage.getItem("chatoxide:token") ?? "") : "";
  const who = identity(name, token);
  if (who && localStorage.getItem("chatoxide:signed-in")) start(who);
  else showLogin();
});
