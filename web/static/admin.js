// The admin page: creates goods, adds stock and shows each goods' stock as
// Redis and MySQL see it, with the consumer's backlog.
'use strict';

const REFRESH_MS = 2000;
const TOKEN_KEY = 'seckill.adminToken';
// The stats cells of a row, in column order after id, name and window.
const COUNTS = ['redis-stock', 'mysql-stock', 'mysql-sale', 'orders', 'stock-logs', 'dead-letters', 'backlog'];

const $ = id => document.getElementById(id);
const tbody = document.querySelector('#goods-table tbody');
const labels = [...document.querySelectorAll('#goods-table th')].map(th => th.textContent);
const rows = new Map(); // goods id -> {tr, pending}
let refreshTimer;
let refreshFailed = false; // the error line shows a failed refresh
let memoryToken = token();

function token() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}

function setToken(t) {
  try {
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* storage off: the token is asked again after a reload */ }
  memoryToken = t;
  $('token-form').hidden = !!t;
  $('token-state').hidden = !t;
}

// api calls the admin API and answers {status, body}. A thrown error is a
// network failure; a 401 forgets the token.
async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { 'Authorization': 'Bearer ' + memoryToken, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  const data = await res.json().catch(() => ({}));
  if (res.status === 401) {
    setToken('');
    showError('Wrong token: the server refused it. Enter the admin token again.');
  }
  return { status: res.status, body: data };
}

function showError(text) {
  $('error').textContent = text;
  $('error').hidden = !text;
}

function notify(text) {
  $('notice').textContent = text;
  $('notice').hidden = !text;
}

function describe(r) {
  return `${r.body.error || 'error'} (HTTP ${r.status}): ${r.body.message || 'no details'}`;
}

$('token-form').addEventListener('submit', e => {
  e.preventDefault();
  setToken($('token').value.trim());
  $('token').value = '';
  showError('');
  refresh();
});

$('token-forget').addEventListener('click', () => {
  setToken('');
  clearTimeout(refreshTimer);
});

// rfc3339 turns a datetime-local value, which is in the browser's time zone,
// into RFC 3339 with that zone's offset, e.g. 2026-11-22T10:00:00+08:00.
function rfc3339(local) {
  const d = new Date(local); // a date-time without an offset is local time
  const two = n => String(Math.abs(n)).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}` +
    `T${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}` +
    `${off < 0 ? '-' : '+'}${two(Math.trunc(off / 60))}:${two(off % 60)}`;
}

$('create-form').addEventListener('submit', async e => {
  e.preventDefault();
  if (!memoryToken) return showError('Enter the admin token first.');
  const body = {
    name: $('create-name').value.trim(), stock: Number($('create-stock').value),
    price: Math.round(Number($('create-price').value) * 100), per_user_limit: Number($('create-limit').value),
    checkout: $('create-checkout').value,
  };
  if ($('create-start').value) body.start_at = rfc3339($('create-start').value);
  if ($('create-end').value) body.end_at = rfc3339($('create-end').value);
  const btn = $('create-submit');
  btn.disabled = true;
  try {
    const r = await api('POST', '/admin/goods', body);
    if (r.status === 201) {
      showError('');
      notify(`Created goods ${r.body.id}, “${r.body.name}”, at ${yuan(r.body.price)}, with ${r.body.stock} in stock.`);
      e.target.reset();
      refresh();
    } else if (r.status !== 401) {
      showError('Could not create the goods: ' + describe(r));
    }
  } catch {
    showError('Cannot reach the server: nothing was created, try again.');
  } finally {
    btn.disabled = false;
  }
});

async function addStock(id, row) {
  const input = row.tr.querySelector('input.add-stock');
  const n = Number(input.value);
  if (!Number.isSafeInteger(n) || n < 1) return showError('Stock to add must be a whole number of at least 1.');
  // One op id per intended addition: a click retried after a lost answer
  // reuses it, so the server adds the units once. A new amount, or a
  // success, starts a new one.
  if (!row.pending || row.pending.n !== n) row.pending = { n, opID: uuid() };
  const btn = row.tr.querySelector('button.add-stock');
  btn.disabled = true;
  try {
    const r = await api('POST', '/admin/goods', { id, add_stock: n, op_id: row.pending.opID });
    if (r.status === 200) {
      row.pending = null;
      input.value = '';
      showError('');
      notify(r.body.replayed
        ? `Goods ${id}: that addition was already applied; nothing added twice.`
        : `Added ${n} to goods ${id}; MySQL stock is now ${r.body.stock}.`);
      refresh();
    } else if (r.status !== 401) {
      showError(`Could not add stock to goods ${id}: ` + describe(r) + ' Click again to retry the same addition.');
    }
  } catch {
    showError(`No answer from the server: the stock may or may not have been added. ` +
      `Click Add again: the retry reuses the same operation id, so it cannot add twice.`);
  } finally {
    btn.disabled = false;
  }
}

function newRow(id) {
  const tr = document.createElement('tr');
  tr.dataset.goodsId = id;
  for (const cls of ['id', 'name', 'price', 'window', ...COUNTS, 'add']) {
    const td = document.createElement('td');
    td.className = cls;
    tr.append(td);
  }
  tr.querySelectorAll('td').forEach((td, i) => { td.dataset.label = labels[i]; });
  const form = document.createElement('form');
  form.className = 'add-form';
  form.innerHTML = '<input class="add-stock" type="number" min="1" step="1" placeholder="units" aria-label="units to add">' +
    '<button class="add-stock" type="submit">Add</button>';
  const edit = document.createElement('button');
  edit.type = 'button';
  edit.className = 'edit quiet';
  edit.textContent = 'Edit';
  tr.querySelector('td.add').append(form, edit);
  const row = { tr, pending: null, goods: null };
  edit.addEventListener('click', () => { if (window.editGoods && row.goods) window.editGoods(row.goods); });
  form.addEventListener('submit', e => { e.preventDefault(); addStock(id, row); });
  return row;
}

// when writes a time of the API with its time zone, or "open".
function when(s) {
  return s ? zoned(apiTime(s)) : 'open';
}

function fill(row, g, st) {
  const cell = cls => row.tr.querySelector('td.' + cls);
  cell('id').textContent = g.id;
  row.goods = g;
  cell('name').textContent = g.checkout === 'seckill' ? g.name + ' (queue and poll)' : g.name;
  cell('price').textContent = yuan(g.price || 0);
  cell('window').textContent = g.start_at || g.end_at ? `${when(g.start_at)} to ${when(g.end_at)}` : 'always';
  if (!st) return; // stats failed this round: keep the last ones
  const backlog = st.orders - st.stock_logs - st.dead_letters;
  const values = [st.redis_stock ?? 'not loaded', st.mysql_stock, st.mysql_sale, st.orders, st.stock_logs, st.dead_letters, backlog];
  COUNTS.forEach((cls, i) => { cell(cls).textContent = values[i]; });
  cell('backlog').classList.toggle('lagging', backlog > 0);
  cell('dead-letters').classList.toggle('alarm', st.dead_letters > 0);
}

// refresh reloads the goods and their stats, then runs again in 2 s.
async function refresh() {
  clearTimeout(refreshTimer);
  if (!memoryToken) return;
  try {
    const list = await api('GET', '/admin/goods');
    if (list.status === 200) {
      const goods = (list.body.goods || []).sort((a, b) => b.id - a.id); // newest first
      const stats = await Promise.all(goods.map(g =>
        api('GET', `/admin/goods/${g.id}/stats`).then(r => r.status === 200 ? r.body : null, () => null)));
      const seen = new Set();
      goods.forEach((g, i) => {
        seen.add(g.id);
        let row = rows.get(g.id);
        if (!row) {
          row = newRow(g.id);
          rows.set(g.id, row);
        }
        fill(row, g, stats[i]);
        // Move a row only when out of place: moving it would blur its input.
        if (tbody.children[i] !== row.tr) tbody.insertBefore(row.tr, tbody.children[i] || null);
      });
      for (const [id, row] of rows) {
        if (!seen.has(id)) { row.tr.remove(); rows.delete(id); }
      }
      $('no-goods').hidden = goods.length > 0;
      if (window.statsSampled) window.statsSampled(goods, stats);
      if (refreshFailed) showError('');
      refreshFailed = false;
    } else if (list.status !== 401) {
      showError('Could not list the goods: ' + describe(list));
    }
  } catch {
    showError('Cannot reach the server — retrying.');
    refreshFailed = true;
  }
  if (memoryToken) refreshTimer = setTimeout(refresh, REFRESH_MS);
}

setToken(memoryToken);
refresh();
