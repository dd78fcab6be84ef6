// The ws-gateway demo page: one WebSocket to the local gateway, the client protocol of
// docs/protocol.md, and a log of every frame. Plain browser JavaScript, no build step.

const $ = (id) => document.getElementById(id);

/** A DOM element; children are nodes or text (never parsed as HTML). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === undefined || v === null) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const GAME_NAMES = { bigger_dice: 'Bigger Dice', tic_tac_toe: 'Tic-Tac-Toe' };
const LOBBY_ID = '1';
const FRAME_LIMIT = 400;
const PRESETS = [
  ['4', 'John'],
  ['9', 'Ann'],
  ['12', 'Bob'],
  ['15', 'Eve'],
];

const state = {
  ws: null,
  config: null,
  openedAt: 0,
  lastOut: null,
  me: null,
  signIn: null,
  online: new Map(),
  names: new Map(),
  peer: null,
  dms: new Map(),
  unread: new Map(),
  readBy: new Map(),
  rooms: new Map(),
  room: null,
  dice: null,
  ttt: null,
  typingSentAt: 0,
  typingTimer: null,
  heartbeat: null,
  reconnectTimer: null,
};

const sid = (v) => (v === null || v === undefined ? '' : String(v));
const nameOf = (id) => state.names.get(sid(id)) ?? `#${sid(id)}`;
const isMe = (id) => state.me !== null && sid(id) === state.me.id;
const clock = (iso) => {
  const d = iso ? new Date(iso) : new Date();
  return Number.isNaN(d.getTime()) ? '' : d.toTimeString().slice(0, 5);
};

function remember(id, name) {
  if (id !== undefined && id !== null && name) state.names.set(sid(id), name);
}

// ---------------------------------------------------------------------------------------------
// Frames: the log of everything in and out, with timing
// ---------------------------------------------------------------------------------------------

function logFrame(dir, frame) {
  const now = performance.now();
  const t = state.openedAt ? `+${((now - state.openedAt) / 1000).toFixed(3)}s` : '';
  let lat = '';
  if (dir === 'in' && state.lastOut && now - state.lastOut.at < 5000) {
    lat = `${Math.round(now - state.lastOut.at)} ms`;
  }
  if (dir === 'out') state.lastOut = { at: now, type: frame.type };
  const shown = frame.token ? { ...frame, token: `${String(frame.token).slice(0, 12)}…` } : frame;
  const item = h(
    'li',
    { class: dir, 'data-type': frame.type ?? '' },
    h(
      'details',
      {},
      h(
        'summary',
        {},
        h('span', { class: 'dir', text: dir === 'in' ? '↓' : '↑' }),
        h('span', { class: 't', text: t }),
        h('span', {
          class: 'type',
          title: frame.type ?? '',
          // Short names: the arrow says which way; the full type is the tooltip and in the details.
          text: String(frame.type ?? '(no type)')
            .replace(/^games\.(event|command)\./, '')
            .replace(/^chat\.(event|command)\./, 'chat.'),
        }),
        lat ? h('span', { class: 'lat', title: 'since the last frame sent', text: lat }) : null,
      ),
      h('pre', { text: JSON.stringify(shown, null, 2) }),
    ),
  );
  const list = $('frames');
  list.append(item);
  while (list.children.length > FRAME_LIMIT) list.firstElementChild.remove();
  if ($('frames-follow').checked) list.scrollTop = list.scrollHeight;
}

function send(frame) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
  state.ws.send(JSON.stringify(frame));
  logFrame('out', frame);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Connection and sign-in
// ---------------------------------------------------------------------------------------------

function setConn(text, on) {
  const el = $('conn');
  el.textContent = text;
  el.className = `pill ${on ? 'on' : 'off'}`;
}

function connect() {
  clearTimeout(state.reconnectTimer);
  const url = `ws://${location.hostname}:${state.config.ws_port}`;
  const ws = new WebSocket(url);
  state.ws = ws;
  setConn('connecting…', false);
  ws.addEventListener('open', () => {
    state.openedAt = performance.now();
    setConn('connected', true);
  });
  ws.addEventListener('message', (e) => {
    let frame;
    try {
      frame = JSON.parse(e.data);
    } catch {
      logFrame('in', { type: '(not JSON)', data: String(e.data).slice(0, 200) });
      return;
    }
    logFrame('in', frame);
    handle(frame);
  });
  ws.addEventListener('close', () => {
    clearInterval(state.heartbeat);
    setConn('disconnected — retrying', false);
    $('signin-button').disabled = true;
    state.reconnectTimer = setTimeout(connect, 1500);
  });
}

async function signIn(userId, username, mode) {
  state.signIn = { userId, username, mode };
  sessionStorage.setItem('demo-user', JSON.stringify(state.signIn));
  if (mode === 'token') {
    const res = await fetch('/demo/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: userId, username }),
    }).catch(() => null);
    if (res?.ok) {
      const { token } = await res.json();
      send({ type: 'system.authenticate', token });
      return;
    }
    notice(`No dev token (${res ? res.status : 'network error'}); using the credential form.`);
  }
  send({ type: 'system.authenticate', user_id: userId, username });
}

function notice(text) {
  const list = $('room').hidden ? $('lobby-log') : $('room-log');
  appendMessage(list, { system: true, text });
}

// ---------------------------------------------------------------------------------------------
// Incoming frames
// ---------------------------------------------------------------------------------------------

function handle(f) {
  const type = String(f.type ?? '');
  if (type === 'system.welcome') {
    $('signin-button').disabled = false;
    clearInterval(state.heartbeat);
    state.heartbeat = setInterval(() => send({ type: 'system.heartbeat' }), 30_000);
    if (state.signIn) signIn(state.signIn.userId, state.signIn.username, state.signIn.mode);
    return;
  }
  if (type === 'system.authenticated') return authenticated(f);
  if (type === 'system.error') return notice(`⚠ ${f.code}: ${f.message}`);
  if (type === 'presence.event.user_online') {
    remember(f.user_id, f.username);
    state.online.set(sid(f.user_id), f.username);
    return renderOnline();
  }
  if (type === 'presence.event.user_offline') {
    state.online.delete(sid(f.user_id));
    return renderOnline();
  }
  if (type.startsWith('chat.event.')) return chatEvent(type.slice('chat.event.'.length), f);
  const m = /^games\.event\.(?:(bigger_dice|tic_tac_toe)\.)?(.+)$/.exec(type);
  if (m) return gameEvent(m[2], m[1] ?? f.game_type ?? null, f);
}

function authenticated(f) {
  state.me = { id: sid(f.user_id), name: f.username };
  remember(f.user_id, f.username);
  state.online.set(state.me.id, f.username);
  const me = $('me');
  me.hidden = false;
  me.textContent = `${f.username} #${f.user_id}`;
  $('signin').hidden = true;
  $('social').hidden = false;
  $('games').hidden = false;
  if (!$('create-name').value) $('create-name').value = `${f.username}'s room`;
  send({ type: 'chat.command.join_lobby', lobby_id: LOBBY_ID });
  refreshRooms();
  if (state.room) send({ type: 'games.command.rejoin_room', room_id: state.room.room_id });
  renderOnline();
}

function refreshRooms() {
  send({ type: 'games.command.list_rooms', game_type: 'bigger_dice' });
  send({ type: 'games.command.list_rooms', game_type: 'tic_tac_toe' });
}

// ---------------------------------------------------------------------------------------------
// Chat
// ---------------------------------------------------------------------------------------------

function appendMessage(list, { who, text, mine, system, meta }) {
  list.querySelector('.empty')?.remove();
  const item = h(
    'li',
    { class: system ? 'system' : mine ? 'mine' : '' },
    who ? h('span', { class: 'who', text: who }) : null,
    text,
    meta ? h('span', { class: 'meta', text: meta }) : null,
  );
  list.append(item);
  list.scrollTop = list.scrollHeight;
  return item;
}

function chatEvent(kind, f) {
  if (kind === 'message_received') {
    remember(f.sender_id, f.sender_name);
    const mine = isMe(f.sender_id);
    const peer = mine ? sid(f.recipient_id) : sid(f.sender_id);
    const list = state.dms.get(peer) ?? [];
    if (list.some((x) => x.id === f.message_id)) return;
    list.push({ id: f.message_id, from: sid(f.sender_id), text: f.content, at: f.sent_at });
    state.dms.set(peer, list);
    if (!mine && peer === state.peer) {
      send({ type: 'chat.command.mark_read', message_ids: [f.message_id], other_user_id: peer });
    } else if (!mine) {
      state.unread.set(peer, (state.unread.get(peer) ?? 0) + 1);
    }
    if (!mine && peer === state.peer) $('typing').hidden = true;
    renderOnline();
    if (peer === state.peer) renderDm();
    return;
  }
  if (kind === 'message_read') {
    state.readBy.set(sid(f.reader_id), f.read_at ?? new Date().toISOString());
    if (sid(f.reader_id) === state.peer) renderDm();
    return;
  }
  if (kind === 'typing') {
    if (sid(f.sender_id) !== state.peer) return;
    const el = $('typing');
    el.textContent = `${f.sender_name || nameOf(f.sender_id)} is typing…`;
    el.hidden = false;
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(() => {
      el.hidden = true;
    }, 3000);
    return;
  }
  if (kind === 'message_rejected') {
    appendMessage($('dm-log'), {
      system: true,
      text: `Not delivered to ${nameOf(f.recipient_id)} (${f.reason})`,
    });
    return;
  }
  if (kind === 'lobby_message') {
    remember(f.sender_id, f.sender_name);
    appendMessage($('lobby-log'), {
      who: f.sender_name,
      text: f.content,
      mine: isMe(f.sender_id),
      meta: clock(f.sent_at),
    });
  }
}

function renderOnline() {
  const ul = $('online');
  ul.replaceChildren();
  const people = [...state.online].sort((a, b) => a[1].localeCompare(b[1]));
  for (const [id, name] of people) {
    const self = isMe(id);
    const unread = state.unread.get(id) ?? 0;
    ul.append(
      h(
        'li',
        {
          class: `${self ? '' : 'clickable'} ${id === state.peer ? 'active' : ''}`,
          'data-user': id,
          onclick: self ? undefined : () => openDm(id),
        },
        h('span', { class: 'dot' }),
        name,
        h('span', { class: 'tag', text: self ? 'you' : unread ? `${unread} new` : `#${id}` }),
      ),
    );
  }
  $('online-count').textContent = String(people.length);
}

function openDm(peer) {
  state.peer = peer;
  state.unread.delete(peer);
  $('dm-title').textContent = `Chat with ${nameOf(peer)}`;
  $('dm-input').disabled = false;
  $('dm-send').disabled = false;
  $('typing').hidden = true;
  const theirs = (state.dms.get(peer) ?? []).filter((m) => m.from === peer);
  if (theirs.length) {
    send({ type: 'chat.command.mark_read', message_ids: theirs.map((m) => m.id), other_user_id: peer });
  }
  renderOnline();
  renderDm();
  $('dm-input').focus();
}

function renderDm() {
  const list = $('dm-log');
  list.replaceChildren();
  const messages = state.dms.get(state.peer) ?? [];
  if (!messages.length) list.append(h('li', { class: 'empty', text: 'No messages yet.' }));
  const readAt = state.readBy.get(state.peer);
  const lastMine = messages.filter((m) => isMe(m.from)).at(-1);
  for (const m of messages) {
    const read = m === lastMine && readAt ? ' · read ✓' : '';
    appendMessage(list, { text: m.text, mine: isMe(m.from), meta: `${clock(m.at)}${read}` });
  }
}

// ---------------------------------------------------------------------------------------------
// Games
// ---------------------------------------------------------------------------------------------

function renderRooms() {
  const ul = $('rooms');
  ul.replaceChildren();
  const rooms = [...state.rooms.values()];
  if (!rooms.length) ul.append(h('li', { class: 'empty', text: 'No open rooms — create one.' }));
  for (const r of rooms) {
    const here = state.room?.room_id === r.room_id;
    ul.append(
      h(
        'li',
        { 'data-room': r.room_name },
        h('span', { class: 'name', text: r.room_name }),
        h('span', { class: 'grow', text: `${GAME_NAMES[r.game_type] ?? r.game_type} · host ${r.host_name}` }),
        here
          ? h('span', { class: 'muted', text: 'you are here' })
          : [
              h('button', {
                class: 'small',
                text: 'Join',
                onclick: () => send({ type: 'games.command.join_room', room_name: r.room_name }),
              }),
              r.allow_spectators !== false
                ? h('button', {
                    class: 'small ghost',
                    text: 'Watch',
                    onclick: () => send({ type: 'games.command.join_as_spectator', room_name: r.room_name }),
                  })
                : null,
            ],
      ),
    );
  }
}

function roomLog(text, system = true, who) {
  appendMessage($('room-log'), { system, text, who });
}

function gameEvent(base, gameType, f) {
  switch (base) {
    case 'room_list':
      for (const [id, r] of state.rooms)
        if (r.game_type === gameType || gameType === null) state.rooms.delete(id);
      for (const r of f.rooms ?? []) if (r.status === 'waiting') state.rooms.set(r.room_id, r);
      return renderRooms();
    case 'room_created':
      state.rooms.set(f.room_id, f);
      return renderRooms();
    case 'room_removed':
      state.rooms.delete(f.room_id);
      renderRooms();
      if (state.room?.room_id === f.room_id && f.reason !== 'game_started') {
        leaveRoomView(`Room “${f.room_name}” was closed (${f.reason}).`);
      }
      return;
    case 'room_state':
      return enterRoom(f.room);
    case 'not_in_room':
      return notice(`You are not in “${f.room_name}”.`);
    case 'removed_from_game':
      if (state.room?.room_id === f.room_id) leaveRoomView(f.message || 'You were not selected.');
      return;
    default:
      break;
  }
  const room = state.room;
  if (!room || f.room_id !== room.room_id) return;
  switch (base) {
    case 'lobby_joined':
      remember(f.player.user_id, f.player.username);
      if (!room.lobby.some((p) => sid(p.user_id) === sid(f.player.user_id))) room.lobby.push(f.player);
      roomLog(`${f.player.username} joined the lobby`);
      break;
    case 'player_selected':
      if (!room.selected_players.map(sid).includes(sid(f.player.user_id)))
        room.selected_players.push(f.player.user_id);
      roomLog(`${f.player.username} was picked to play`);
      break;
    case 'game_starting':
      room.lobby = (f.players ?? []).map((p) => ({ ...p }));
      roomLog('All players picked — press Ready');
      break;
    case 'player_ready': {
      const p = room.lobby.find((x) => sid(x.user_id) === sid(f.user_id));
      if (p) p.is_ready = true;
      roomLog(`${f.username} is ready`);
      break;
    }
    case 'game_started': {
      const ids = (f.players ?? []).map((p) => sid(p.id));
      room.players = (f.players ?? []).map((p) => ({ user_id: p.id, username: p.name, score: 0 }));
      room.lobby = room.lobby.filter((p) => !ids.includes(sid(p.user_id)));
      room.status = 'in_progress';
      room.current_turn = f.first_turn;
      state.dice = { faces: new Map(), roundDone: false, winner: null };
      roomLog(`${GAME_NAMES[room.game_type]} started — ${nameOf(f.first_turn)} goes first`);
      break;
    }
    case 'turn_changed':
      room.current_turn = f.current_turn;
      break;
    case 'rolled': {
      const d = state.dice ?? { faces: new Map(), roundDone: false, winner: null };
      if (d.roundDone) {
        d.faces.clear();
        d.roundDone = false;
        d.winner = null;
      }
      d.faces.set(sid(f.player_id), f.roll);
      state.dice = d;
      roomLog(`${f.player_name} rolled ${f.roll}`);
      break;
    }
    case 'round_result': {
      const d = state.dice;
      if (d) {
        d.roundDone = true;
        d.winner = f.winner_id;
      }
      for (const [id, score] of f.scores ?? []) {
        const p = room.players.find((x) => sid(x.user_id) === sid(id));
        if (p) p.score = score;
      }
      roomLog(f.is_tie ? 'Tie — tiebreaker!' : `${nameOf(f.winner_id)} takes the round`);
      break;
    }
    case 'tiebreaker_started':
      break;
    case 'game_over':
      room.status = 'finished';
      room.winner_id = f.winner;
      for (const [id, , score] of f.final_scores ?? []) {
        const p = room.players.find((x) => sid(x.user_id) === sid(id));
        if (p) p.score = score;
      }
      roomLog(`Game over — ${f.winner_name} wins`);
      break;
    case 'state':
      if (gameType === 'tic_tac_toe') {
        state.ttt = {
          board: f.board,
          x: sid(f.player_x_id),
          o: sid(f.player_o_id),
          scores: new Map((f.scores ?? []).map(([id, s]) => [sid(id), s])),
          line: null,
        };
        room.current_turn = f.current_turn;
      }
      break;
    case 'moved':
      if (state.ttt) {
        state.ttt.board = f.board;
        state.ttt.line = null;
      }
      roomLog(`${f.player_username} played ${f.mark} at ${f.position + 1}`);
      break;
    case 'game_result': {
      const t = state.ttt;
      if (t) {
        t.line = f.winning_line ?? null;
        t.scores = new Map((f.scores ?? []).map(([id, s]) => [sid(id), s]));
        t.resultText = f.is_draw
          ? `Game ${f.game_number}: draw`
          : `Game ${f.game_number}: ${f.winner_username} wins`;
        // The next game starts at once with the marks swapped; show this board a moment first.
        const nextX = sid(f.next_first_player);
        setTimeout(() => {
          if (state.ttt !== t) return;
          t.board = Array(9).fill(null);
          t.o = t.x === nextX ? t.o : t.x;
          t.x = nextX;
          t.line = null;
          t.resultText = null;
          renderRoom();
        }, 1500);
      }
      roomLog(
        f.is_draw ? `Game ${f.game_number} is a draw` : `${f.winner_username} wins game ${f.game_number}`,
      );
      break;
    }
    case 'match_ended':
      room.status = 'finished';
      room.winner_id = f.winner_id;
      if (state.ttt) state.ttt.scores = new Map((f.final_scores ?? []).map(([id, , s]) => [sid(id), s]));
      roomLog(`Match over — ${f.winner_username} wins`);
      break;
    case 'spectator_data_joined':
      if (f.spectator) {
        remember(f.spectator.user_id, f.spectator.username);
        if (!room.spectators_data.some((s) => sid(s.user_id) === sid(f.spectator.user_id)))
          room.spectators_data.push(f.spectator);
        roomLog(`${f.spectator.username} is watching`);
      }
      break;
    case 'spectator_left':
      room.spectators_data = room.spectators_data.filter((s) => sid(s.user_id) !== sid(f.user_id));
      roomLog(`${f.username} stopped watching`);
      break;
    case 'player_left':
      room.lobby = room.lobby.filter((p) => sid(p.user_id) !== sid(f.player_id));
      room.players = room.players.filter((p) => sid(p.user_id) !== sid(f.player_id));
      room.selected_players = room.selected_players.filter((id) => sid(id) !== sid(f.player_id));
      roomLog(`${f.player_name} left`);
      break;
    case 'player_disconnected':
      roomLog(`${f.username} disconnected`);
      break;
    case 'player_rejoined':
      roomLog(`${f.username} is back`);
      break;
    case 'lobby_chat':
    case 'player_chat':
    case 'spectator_chat':
    case 'chat_message':
      roomLog(
        f.content,
        false,
        `${f.username}${base === 'spectator_chat' || f.channel === 'spectators' ? ' 👁' : ''}`,
      );
      break;
    default:
      break;
  }
  renderRoom();
}

function enterRoom(room) {
  const fresh = state.room?.room_id !== room.room_id;
  state.room = {
    ...room,
    players: [...(room.players ?? [])],
    lobby: [...(room.lobby ?? [])],
    spectators_data: [...(room.spectators_data ?? [])],
    selected_players: [...(room.selected_players ?? [])],
  };
  for (const p of [...state.room.players, ...state.room.lobby, ...state.room.spectators_data])
    remember(p.user_id, p.username);
  if (fresh) {
    $('room-log').replaceChildren();
    state.dice =
      room.game_type === 'bigger_dice' ? { faces: new Map(), roundDone: false, winner: null } : null;
    state.ttt = null;
    roomLog(`You are in “${room.room_name}” (${GAME_NAMES[room.game_type] ?? room.game_type})`);
  }
  $('room').hidden = false;
  renderRooms();
  renderRoom();
}

function leaveRoomView(text) {
  state.room = null;
  state.dice = null;
  state.ttt = null;
  $('room').hidden = true;
  renderRooms();
  if (text) notice(text);
}

function myRole(room) {
  if (!state.me) return 'none';
  if (room.players.some((p) => isMe(p.user_id))) return 'player';
  if (room.lobby.some((p) => isMe(p.user_id))) return 'lobby';
  if (room.spectators_data.some((s) => isMe(s.user_id))) return 'spectator';
  return 'none';
}

function person(p, { tag, pick, turn } = {}) {
  return h(
    'li',
    { class: turn ? 'turn' : '', 'data-user': sid(p.user_id) },
    h('span', { class: 'dot' }),
    `${p.username}${isMe(p.user_id) ? ' (you)' : ''}`,
    tag ? h('span', { class: 'tag', text: tag }) : null,
    pick ? h('button', { class: 'small', text: 'Pick', onclick: pick }) : null,
  );
}

function renderRoom() {
  const room = state.room;
  if (!room) return;
  const role = myRole(room);
  const selected = room.selected_players.map(sid);
  const waiting = room.status === 'waiting';
  const amHost = isMe(room.host_id);
  const myTurn = room.status === 'in_progress' && isMe(room.current_turn);

  $('room-title').textContent = `${room.room_name} · ${GAME_NAMES[room.game_type] ?? room.game_type}`;
  const status = $('room-status');
  status.textContent =
    { waiting: 'waiting', in_progress: 'playing', finished: 'finished' }[room.status] ?? room.status;
  status.className = `pill ${room.status === 'in_progress' ? 'on' : ''}`;

  const shownPlayers = waiting ? room.lobby.filter((p) => selected.includes(sid(p.user_id))) : room.players;
  const rest = waiting ? room.lobby.filter((p) => !selected.includes(sid(p.user_id))) : room.lobby;
  const canPick = waiting && amHost && selected.length < room.player_count;
  const scoreOf = (p) =>
    room.game_type === 'tic_tac_toe' && state.ttt
      ? (state.ttt.scores.get(sid(p.user_id)) ?? 0)
      : (p.score ?? 0);
  $('room-players').replaceChildren(
    ...shownPlayers.map((p) =>
      person(p, {
        tag: waiting ? (p.is_ready ? 'ready ✓' : 'picked') : `${scoreOf(p)} pts${markOf(p)}`,
        turn: room.status === 'in_progress' && sid(room.current_turn) === sid(p.user_id),
      }),
    ),
  );
  if (!shownPlayers.length)
    $('room-players').append(h('li', { class: 'muted', text: `none yet (${room.player_count} needed)` }));
  $('room-lobby').replaceChildren(
    ...rest.map((p) =>
      person(p, {
        tag:
          isMe(p.user_id) && !amHost
            ? 'waiting to be picked'
            : sid(p.user_id) === sid(room.host_id)
              ? 'host'
              : '',
        pick: canPick
          ? () =>
              send({
                type: 'games.command.select_player',
                room_id: room.room_id,
                target_user_id: sid(p.user_id),
              })
          : undefined,
      }),
    ),
  );
  $('room-lobby-title').hidden = !rest.length;
  $('room-spectators').replaceChildren(...room.spectators_data.map((s) => person(s)));
  if (!room.spectators_data.length) $('room-spectators').append(h('li', { class: 'muted', text: 'nobody' }));

  const me = room.lobby.find((p) => isMe(p.user_id));
  const ready = $('ready-button');
  ready.hidden = !(
    waiting &&
    me &&
    selected.includes(me && sid(me.user_id)) &&
    selected.length === room.player_count
  );
  ready.disabled = Boolean(me?.is_ready);
  ready.textContent = me?.is_ready ? 'Ready ✓ — waiting for the others' : 'Ready';

  const banner = $('room-banner');
  banner.className = 'banner';
  if (waiting) {
    banner.textContent =
      selected.length < room.player_count
        ? amHost
          ? `Pick ${room.player_count - selected.length} more player(s) from the lobby`
          : `Waiting for ${nameOf(room.host_id)} to pick ${room.player_count} players`
        : 'Everyone picked — waiting for Ready';
  } else if (room.status === 'finished') {
    banner.className = 'banner win';
    banner.textContent = `${nameOf(room.winner_id)} wins${isMe(room.winner_id) ? ' — well played!' : ''}`;
  } else if (state.ttt?.resultText) {
    banner.textContent = state.ttt.resultText;
  } else {
    banner.textContent =
      role === 'spectator'
        ? `${nameOf(room.current_turn)} to play`
        : myTurn
          ? 'Your turn'
          : `${nameOf(room.current_turn)}'s turn`;
  }

  const dice = $('dice');
  dice.hidden = !(room.game_type === 'bigger_dice' && !waiting);
  if (!dice.hidden) {
    const d = state.dice ?? { faces: new Map(), winner: null };
    $('dice-faces').replaceChildren(
      ...room.players.map((p) =>
        h(
          'div',
          {
            class: `face ${d.winner !== null && sid(d.winner) === sid(p.user_id) ? 'won' : ''}`,
            'data-user': sid(p.user_id),
          },
          h('b', { text: d.faces.has(sid(p.user_id)) ? String(d.faces.get(sid(p.user_id))) : '·' }),
          h('span', { text: p.username }),
          h('span', { class: 'score', text: `${p.score ?? 0}` }),
        ),
      ),
    );
    $('roll-button').hidden = role !== 'player';
    $('roll-button').disabled = !myTurn;
  }

  const board = $('board');
  board.hidden = !(room.game_type === 'tic_tac_toe' && !waiting && state.ttt);
  if (!board.hidden) {
    const t = state.ttt;
    board.replaceChildren(
      ...t.board.map((cell, i) =>
        h('button', {
          class: `${cell === 'X' ? 'x' : cell === 'O' ? 'o' : ''} ${t.line?.includes(i) ? 'line' : ''}`,
          'data-cell': i,
          text: cell ?? '',
          disabled: !myTurn || cell !== null || Boolean(t.resultText) || role !== 'player',
          onclick: () => send({ type: 'games.command.tic_tac_toe.move', room_id: room.room_id, position: i }),
        }),
      ),
    );
  }
}

function markOf(p) {
  const t = state.ttt;
  if (!t) return '';
  if (sid(p.user_id) === t.x) return ' · X';
  if (sid(p.user_id) === t.o) return ' · O';
  return '';
}

// ---------------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------------

function wire() {
  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    signIn($('user-id').value.trim(), $('user-name').value.trim(), $('auth-mode').value);
  });
  $('dm-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const content = $('dm-input').value.trim();
    if (!content || !state.peer) return;
    send({ type: 'chat.command.send_message', recipient_id: state.peer, content });
    $('dm-input').value = '';
  });
  $('dm-input').addEventListener('input', () => {
    const now = Date.now();
    if (state.peer && now - state.typingSentAt > 2000) {
      state.typingSentAt = now;
      send({ type: 'chat.command.typing', recipient_id: state.peer });
    }
  });
  $('lobby-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const content = $('lobby-input').value.trim();
    if (!content) return;
    send({ type: 'chat.command.send_lobby_message', lobby_id: LOBBY_ID, content });
    $('lobby-input').value = '';
  });
  $('create-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const room_name = $('create-name').value.trim();
    if (!room_name) return;
    send({ type: 'games.command.create_room', game_type: $('create-type').value, room_name });
  });
  $('refresh-rooms').addEventListener('click', refreshRooms);
  $('leave-button').addEventListener('click', () => {
    if (!state.room) return;
    send({ type: 'games.command.leave_room', room_id: state.room.room_id });
    leaveRoomView('You left the room.');
  });
  $('ready-button').addEventListener('click', () => {
    if (state.room) send({ type: 'games.command.ready', room_id: state.room.room_id });
  });
  $('roll-button').addEventListener('click', () => {
    if (state.room) send({ type: 'games.command.bigger_dice.roll', room_id: state.room.room_id });
  });
  $('room-chat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const room = state.room;
    const content = $('room-chat-input').value.trim();
    if (!room || !content) return;
    const role = myRole(room);
    const channel = role === 'spectator' ? 'spectators' : room.status === 'waiting' ? 'lobby' : 'players';
    send({ type: 'games.command.send_chat', room_id: room.room_id, channel, content });
    $('room-chat-input').value = '';
  });
  $('frames-clear').addEventListener('click', () => $('frames').replaceChildren());
}

async function main() {
  wire();
  const params = new URLSearchParams(location.search);
  const saved = JSON.parse(sessionStorage.getItem('demo-user') ?? 'null');
  const preset = PRESETS[Math.floor(Math.random() * PRESETS.length)];
  $('user-id').value = params.get('user') ?? saved?.userId ?? preset[0];
  $('user-name').value = params.get('name') ?? saved?.username ?? preset[1];
  $('auth-mode').value = params.get('auth') ?? saved?.mode ?? 'token';
  if (saved && !params.has('user')) state.signIn = saved;
  state.config = await (await fetch('/demo/config.json')).json();
  connect();
}

main();
