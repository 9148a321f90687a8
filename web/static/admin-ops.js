// The admin page's operations: editing a goods' name and sale window,
// live charts of orders per second and stock, a reconciliation on demand
// and the dead letters with their actions. Uses api, $, showError,
// notify, describe, rfc3339 and memoryToken from admin.js.
'use strict';

(() => {
  const tzName = new Intl.DateTimeFormat([], { timeZoneName: 'long' }).formatToParts(new Date())
    .find(p => p.type === 'timeZoneName')?.value || Intl.DateTimeFormat().resolvedOptions().timeZone;
  document.querySelectorAll('.tz').forEach(el => { el.textContent = `${tzName} (${Intl.DateTimeFormat().resolvedOptions().timeZone})`; });

  // datetime-local value of an API time, in the browser's zone.
  function localInput(s) {
    const ms = apiTime(s);
    if (ms === null) return '';
    const d = new Date(ms);
    const two = n => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}`;
  }

  // Edit: the row's Edit button fills the form.
  let editing = 0;
  window.editGoods = g => {
    editing = g.id;
    $('edit-id').textContent = `${g.id}`;
    $('edit-name').value = g.name;
    $('edit-start').value = localInput(g.start_at);
    $('edit-end').value = localInput(g.end_at);
    $('edit-panel').hidden = false;
    $('edit-name').focus();
  };
  $('edit-cancel').addEventListener('click', () => { $('edit-panel').hidden = true; editing = 0; });
  $('edit-form').addEventListener('submit', async e => {
    e.preventDefault();
    if (!editing) return;
    const body = {
      name: $('edit-name').value.trim(),
      start_at: $('edit-start').value ? rfc3339($('edit-start').value) : null,
      end_at: $('edit-end').value ? rfc3339($('edit-end').value) : null,
    };
    const btn = $('edit-submit');
    btn.disabled = true;
    try {
      const r = await api('PATCH', `/admin/goods/${editing}`, body);
      if (r.status === 200) {
        showError('');
        notify(`Saved goods ${r.body.id}, “${r.body.name}”: on sale ${r.body.start_at || r.body.end_at ? `${when(r.body.start_at)} to ${when(r.body.end_at)}` : 'always'}.`);
        $('edit-panel').hidden = true;
        editing = 0;
        refresh();
      } else if (r.status !== 401) {
        showError(`Could not save goods ${editing}: ` + describe(r) + (r.status === 503 ? ' Save again: it sets the same values.' : ''));
      }
    } catch {
      showError('No answer from the server: the edit may or may not be saved. Save again: it sets the same values.');
    } finally {
      btn.disabled = false;
    }
  });

  // Charts: a sample per goods per refresh of the table (every 2 s).
  const WINDOW_MS = 5 * 60 * 1000;
  const samples = new Map(); // goods id -> [{t, orders, redis, mysql}]
  const select = $('chart-goods');
  window.statsSampled = (goods, stats) => {
    const t = Date.now();
    goods.forEach((g, i) => {
      const st = stats[i];
      if (!st) return;
      const s = samples.get(g.id) || [];
      s.push({ t, orders: st.orders, redis: st.redis_stock, mysql: st.mysql_stock });
      while (s.length && s[0].t < t - WINDOW_MS) s.shift();
      samples.set(g.id, s);
    });
    const ids = goods.map(g => String(g.id));
    const have = [...select.options].map(o => o.value);
    if (ids.join() !== have.join()) {
      const chosen = select.value || ids[0] || '';
      select.replaceChildren(...goods.map(g => new Option(`${g.id} · ${g.name}`, String(g.id))));
      select.value = ids.includes(chosen) ? chosen : ids[0] || '';
    }
    draw();
  };
  select.addEventListener('change', draw);

  function draw() {
    const s = samples.get(Number(select.value)) || [];
    const rate = [];
    for (let i = 1; i < s.length; i++) {
      const dt = (s[i].t - s[i - 1].t) / 1000;
      if (dt > 0) rate.push({ t: s[i].t, v: Math.max(0, (s[i].orders - s[i - 1].orders) / dt) });
    }
    plot($('chart-rate'), [{ cls: 'rate', points: rate }]);
    plot($('chart-stock'), [
      { cls: 'redis', points: s.filter(p => p.redis !== null).map(p => ({ t: p.t, v: p.redis })) },
      { cls: 'mysql', points: s.map(p => ({ t: p.t, v: p.mysql })) },
    ]);
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function el(name, attrs, text) {
    const e = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // plot draws series of {t, v} over the last five minutes, y from 0 to
  // the largest value, with the axis labels in the browser's time zone.
  function plot(svg, series) {
    const W = 600, H = 200, L = 48, R = 8, T = 10, B = 22;
    const now = Date.now(), from = now - WINDOW_MS;
    const top = Math.max(1, ...series.flatMap(s => s.points.map(p => p.v)));
    const x = t => L + (t - from) / WINDOW_MS * (W - L - R);
    const y = v => H - B - v / top * (H - T - B);
    const parts = [
      el('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'axis' }),
      el('line', { x1: L, y1: T, x2: L, y2: H - B, class: 'axis' }),
      el('text', { x: L - 4, y: T + 8, class: 'label', 'text-anchor': 'end' }, fmt(top)),
      el('text', { x: L - 4, y: H - B, class: 'label', 'text-anchor': 'end' }, '0'),
      el('text', { x: L, y: H - 6, class: 'label' }, clock(from)),
      el('text', { x: W - R, y: H - 6, class: 'label', 'text-anchor': 'end' }, clock(now)),
    ];
    for (const s of series) {
      if (!s.points.length) continue;
      parts.push(el('polyline', { class: 'series ' + s.cls, points: s.points.map(p => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ') }));
      const last = s.points[s.points.length - 1];
      parts.push(el('text', { x: W - R, y: Math.max(T + 8, y(last.v) - 4), class: 'label value ' + s.cls, 'text-anchor': 'end' }, fmt(last.v)));
    }
    svg.replaceChildren(...parts);
    svg.dataset.points = series.map(s => s.points.length).join(',');
  }
  const fmt = v => (Math.round(v * 10) / 10).toLocaleString();
  const clockFormat = new Intl.DateTimeFormat([], { hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short' });
  const clock = ms => clockFormat.format(new Date(ms));

  // Reconcile now.
  $('reconcile-now').addEventListener('click', async () => {
    if (!memoryToken) return showError('Enter the admin token first.');
    const btn = $('reconcile-now');
    btn.disabled = true;
    try {
      const r = await api('POST', '/admin/reconcile');
      if (r.status === 200) {
        showError('');
        $('repair-after').textContent = r.body.repair_after;
        const rows = [
          ...(r.body.goods || []).map(d => ['goods ' + d.goods_id, d.redis_stock ?? 'not loaded', d.truth, d.drift, d.seen, d.repaired ? 'yes' : 'no']),
          ...(r.body.coupons || []).map(d => ['template ' + d.template_id, d.redis_remaining ?? 'not loaded', d.truth, d.drift, d.seen, d.repaired ? 'yes' : 'no']),
        ];
        const table = document.createElement('table');
        table.className = 'stats reconcile';
        table.innerHTML = '<thead><tr><th>what</th><th>Redis</th><th>truth</th><th>drift</th><th>passes seen</th><th>repaired</th></tr></thead>';
        const tbody = document.createElement('tbody');
        for (const cells of rows) {
          const tr = document.createElement('tr');
          for (const [i, c] of cells.entries()) {
            const td = document.createElement('td');
            td.textContent = c;
            td.dataset.label = ['what', 'Redis', 'truth', 'drift', 'passes seen', 'repaired'][i];
            tr.append(td);
          }
          tbody.append(tr);
        }
        table.append(tbody);
        const at = document.createElement('p');
        const drifting = rows.filter(c => c[3] !== 0).length;
        at.textContent = `Pass at ${zoned(Date.now())}: ${rows.length} checked, ${drifting} drifting.`;
        at.className = 'reconcile-summary';
        $('reconcile-result').replaceChildren(at, table);
      } else if (r.status !== 401) {
        showError('Could not reconcile: ' + describe(r));
      }
    } catch {
      showError('No answer from the server: try Reconcile now again.');
    } finally {
      btn.disabled = false;
    }
  });

  // Dead letters.
  const dlBody = document.querySelector('#dl-table tbody');
  const dlRows = new Map();
  let dlTimer;

  async function act(id, what, tr) {
    const note = tr.querySelector('input.note').value.trim();
    tr.querySelectorAll('button').forEach(b => { b.disabled = true; });
    try {
      const r = await api('POST', `/admin/dead-letters/${id}/${what}`, { note });
      if (r.status === 200) {
        showError('');
        notify(r.body.acted
          ? `Dead letter ${id} ${what === 'replay' ? 'replayed: its message is on its topic again' : 'resolved'}.`
          : `Dead letter ${id} was ${r.body.letter.status} already; nothing done twice.`);
      } else if (r.status !== 401) {
        showError(`Could not ${what} dead letter ${id}: ` + describe(r));
      }
    } catch {
      showError(`No answer from the server: click ${what === 'replay' ? 'Replay' : 'Resolve'} again — it is never done twice.`);
    }
    loadLetters();
  }

  function letterRow(l) {
    let tr = dlRows.get(l.id);
    if (!tr) {
      tr = document.createElement('tr');
      tr.dataset.letterId = l.id;
      for (const cls of ['id', 'when', 'topic', 'order', 'reason', 'attempts', 'status', 'actions']) {
        const td = document.createElement('td');
        td.className = cls;
        tr.append(td);
      }
      tr.querySelectorAll('td').forEach((td, i) => { td.dataset.label = document.querySelectorAll('#dl-table th')[i].textContent; });
      tr.querySelector('td.actions').innerHTML = '<input class="note" placeholder="note" aria-label="note" maxlength="1000">' +
        '<button class="replay" type="button">Replay</button><button class="resolve quiet" type="button">Resolve</button>';
      tr.querySelector('.replay').addEventListener('click', () => act(l.id, 'replay', tr));
      tr.querySelector('.resolve').addEventListener('click', () => act(l.id, 'resolve', tr));
      dlRows.set(l.id, tr);
    }
    const cell = cls => tr.querySelector('td.' + cls);
    cell('id').textContent = l.id;
    cell('when').textContent = zoned(apiTime(l.created_at));
    cell('topic').textContent = l.topic || '—';
    cell('order').textContent = l.order_id ? l.order_id + (l.sale_applied ? ' (stock applied)' : '') : '—';
    cell('reason').textContent = l.reason;
    cell('reason').title = l.body;
    cell('attempts').textContent = l.attempts;
    cell('status').textContent = l.status;
    tr.dataset.status = l.status;
    tr.querySelector('.replay').disabled = l.status !== 'open' || !l.topic;
    tr.querySelector('.resolve').disabled = l.status === 'resolved';
    return tr;
  }

  async function loadLetters() {
    clearTimeout(dlTimer);
    if (memoryToken) {
      try {
        const r = await api('GET', '/admin/dead-letters?limit=50');
        if (r.status === 200) {
          const letters = r.body.dead_letters || [];
          const seen = new Set();
          letters.forEach((l, i) => {
            seen.add(l.id);
            const tr = letterRow(l);
            if (dlBody.children[i] !== tr) dlBody.insertBefore(tr, dlBody.children[i] || null);
          });
          for (const [id, tr] of dlRows) {
            if (!seen.has(id)) { tr.remove(); dlRows.delete(id); }
          }
          $('no-letters').hidden = letters.length > 0;
        }
      } catch { /* the goods refresh reports an unreachable server */ }
    }
    dlTimer = setTimeout(loadLetters, 3000);
  }
  $('token-form').addEventListener('submit', () => setTimeout(loadLetters, 0));
  loadLetters();
})();
