// The shopper page: lists the goods, counts down to each sale from the
// server's clock, and places one-unit orders.
'use strict';

const POLL_MS = 1000;
const ID_KEY = 'seckill.shopperId';

const list = document.getElementById('goods');
const template = document.getElementById('card');
const shopperID = document.getElementById('shopper-id');
const statusLine = document.getElementById('status');
const empty = document.getElementById('empty');

// Cards by goods id. A card keeps its element across polls, so a button
// that is waiting for an answer and the last outcome survive a refresh.
const cards = new Map();
// Server time minus client time, in ms: countdowns follow the server's
// clock, whatever the client's clock says.
let clockOffset = 0;
let pollTimer;

shopperID.value = load(ID_KEY);
shopperID.addEventListener('input', () => save(ID_KEY, shopperID.value.trim()));

function load(key) {
  try { return localStorage.getItem(key) || ''; } catch { return ''; }
}

function save(key, value) {
  try { localStorage.setItem(key, value); } catch { /* storage off: the field still works */ }
}

// Go writes nanoseconds; keep milliseconds, which every browser parses.
function parseTime(s) {
  return s ? Date.parse(s.replace(/(\.\d{3})\d+/, '$1')) : null;
}

function serverNow() { return Date.now() + clockOffset; }

async function poll() {
  clearTimeout(pollTimer);
  if (!document.hidden) {
    try {
      const sent = Date.now();
      const res = await fetch('/goods', { cache: 'no-store' });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const body = await res.json();
      // The server read its clock about halfway through the round trip.
      clockOffset = parseTime(body.server_time) - (sent + Date.now()) / 2;
      render(body.goods || []);
      statusLine.hidden = true;
    } catch {
      statusLine.textContent = 'Cannot reach the shop — retrying…';
      statusLine.hidden = false;
    }
  }
  clearTimeout(pollTimer);
  pollTimer = setTimeout(poll, POLL_MS);
}

document.addEventListener('visibilitychange', () => { if (!document.hidden) poll(); });

function render(goods) {
  const seen = new Set();
  for (const g of goods) {
    seen.add(g.id);
    let c = cards.get(g.id);
    if (!c) {
      c = newCard(g);
      cards.set(g.id, c);
      list.append(c.el);
    }
    c.goods = g;
    setText(c.el.querySelector('.name'), g.name);
  }
  for (const [id, c] of cards) {
    if (!seen.has(id)) {
      c.el.remove();
      cards.delete(id);
    }
  }
  empty.hidden = cards.size > 0;
  cards.forEach(paint);
}

function newCard(g) {
  const el = template.content.firstElementChild.cloneNode(true);
  el.dataset.goodsId = g.id;
  const c = { el, goods: g, busy: false, holdUntil: 0 };
  el.querySelector('.buy').addEventListener('click', () => buy(c));
  return c;
}

// paint shows a card's stock, countdown and button for the current time.
function paint(c) {
  const g = c.goods;
  const now = serverNow();
  const start = parseTime(g.start_at);
  const end = parseTime(g.end_at);
  let phase = 'open';
  if (start !== null && now < start) phase = 'soon';
  else if (end !== null && now >= end) phase = 'ended';
  const soldOut = g.stock <= 0;
  c.el.dataset.phase = phase;

  setText(c.el.querySelector('.stock'), soldOut ? 'Sold out' : g.stock + ' left');
  const countdown = c.el.querySelector('.countdown');
  setText(countdown,
    phase === 'soon' ? 'Starts in ' + duration(start - now) :
    phase === 'ended' ? 'Sale ended' :
    end !== null ? 'Ends in ' + duration(end - now) : 'On sale now');
  countdown.title = start !== null ? 'Starts ' + new Date(start - clockOffset).toLocaleString() : '';

  const btn = c.el.querySelector('.buy');
  btn.disabled = c.busy || phase !== 'open' || soldOut || performance.now() < c.holdUntil;
  setText(btn,
    c.busy ? 'Ordering…' :
    phase === 'soon' ? 'Not started' :
    phase === 'ended' ? 'Sale ended' :
    soldOut ? 'Sold out' : 'Buy');
}

// setText writes text only when it changed: the cards repaint four times a second.
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function duration(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
  const two = n => String(n).padStart(2, '0');
  if (h > 0) return `${h}h ${two(m)}m ${two(sec)}s`;
  if (m > 0) return `${m}m ${two(sec)}s`;
  return `${sec}s`;
}

const refusals = {
  sold_out: 'Sold out',
  not_started: 'The sale has not started yet',
  ended: 'The sale has ended',
};

async function buy(c) {
  const userID = Number(shopperID.value);
  if (!Number.isSafeInteger(userID) || userID < 1) {
    say(c, 'Enter your shopper id first', false);
    shopperID.focus();
    return;
  }
  // Disabled from the click until the answer: a double click sends one order.
  c.busy = true;
  paint(c);
  let text = 'Something went wrong — please retry', ok = false;
  try {
    const res = await fetch('/order', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user_id: userID, goods_id: c.goods.id, number: 1 }),
    });
    const body = await res.json().catch(() => ({}));
    if (res.status === 201) {
      text = 'Ordered! order id ' + body.order_id;
      ok = true;
    } else if (res.status === 409 && refusals[body.error]) {
      text = refusals[body.error];
    } else if (res.status === 429) {
      text = 'Too many requests — try again in a moment';
    }
    if (res.status === 429 || res.status === 503) {
      // Honour Retry-After (capped) so a busy server is not hammered.
      const wait = Math.min(Number(res.headers.get('Retry-After')) || 1, 10);
      c.holdUntil = performance.now() + wait * 1000;
      setTimeout(() => paint(c), wait * 1000 + 50);
    }
  } catch { /* network error: the generic message */ }
  c.busy = false;
  say(c, text, ok);
  paint(c);
  if (ok) poll(); // show the new stock now rather than within a second
}

function say(c, text, ok) {
  const out = c.el.querySelector('.outcome');
  out.textContent = text;
  out.className = 'outcome ' + (ok ? 'ok' : 'bad');
}

// Countdowns tick between polls.
setInterval(() => cards.forEach(paint), 250);
poll();
