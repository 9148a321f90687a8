// The admin page's coupon templates: creates them, adds stock and shows
// each one's figures and sub-stocks. Runs after shared.js and admin.js,
// whose api, $, notify, describe, rfc3339 and token it uses; its own names
// stay inside this block.
'use strict';
{
  const TEMPLATES_MS = 2000;
  const FIGURES = ['stock', 'issued', 'redis-remaining', 'used', 'expired', 'pending-ops'];

  const list = $('tpl-list');
  const cardTemplate = $('tpl-card');
  const cards = new Map(); // template id -> {el, pending}
  let timer;

  function formError(text) {
    $('tpl-error').textContent = text;
    $('tpl-error').hidden = !text;
  }

  // The value field reads ¥ for fixed and threshold coupons, a percentage
  // for percent ones; the threshold field shows for threshold coupons only.
  function typeChanged() {
    const type = $('tpl-type').value, value = $('tpl-value');
    const percent = type === 'percent';
    $('tpl-value-label').textContent = percent ? 'Percent off (1–99)' : 'Value (¥)';
    value.min = percent ? '1' : '0.01';
    value.max = percent ? '99' : '';
    value.step = percent ? '1' : '0.01';
    $('tpl-threshold-field').hidden = type !== 'threshold';
    $('tpl-threshold').required = type === 'threshold';
  }
  $('tpl-type').addEventListener('change', typeChanged);
  typeChanged();

  const cents = yuanText => Math.round(Number(yuanText) * 100);

  $('tpl-form').addEventListener('submit', async e => {
    e.preventDefault();
    if (!memoryToken) return formError('Enter the admin token first.');
    const type = $('tpl-type').value;
    const body = {
      name: $('tpl-name').value.trim(),
      type,
      value: type === 'percent' ? Number($('tpl-value').value) : cents($('tpl-value').value),
      stock: Number($('tpl-stock').value),
      per_user_limit: Number($('tpl-limit').value),
    };
    if (type === 'threshold') body.threshold = cents($('tpl-threshold').value);
    if ($('tpl-start').value) body.start_at = rfc3339($('tpl-start').value);
    if ($('tpl-end').value) body.end_at = rfc3339($('tpl-end').value);
    if ($('tpl-valid').value.trim()) body.valid_for = $('tpl-valid').value.trim();
    if ($('tpl-subs').value) body.sub_stocks = Number($('tpl-subs').value);
    const btn = $('tpl-submit');
    btn.disabled = true;
    try {
      const r = await api('POST', '/admin/coupon-templates', body);
      if (r.status === 201) {
        formError('');
        notify(`Created coupon template ${r.body.id}, “${r.body.name}”: ${couponValue(r.body)}, ${r.body.stock} in stock.`);
        e.target.reset();
        typeChanged();
        refreshTemplates();
      } else if (r.status !== 401) {
        formError('Not created: ' + (r.body.message ? r.body.message.replace(/^invalid request: /, '') : describe(r)));
      }
    } catch {
      formError('Cannot reach the server: nothing was created, try again.');
    } finally {
      btn.disabled = false;
    }
  });

  async function addStock(id, card) {
    const input = card.el.querySelector('input.add-stock');
    const n = Number(input.value);
    if (!Number.isSafeInteger(n) || n < 1) return showError('Stock to add must be a whole number of at least 1.');
    // One op id per intended addition, as for goods: a click retried after
    // a lost answer reuses it, so the server adds the units once.
    if (!card.pending || card.pending.n !== n) card.pending = { n, opID: uuid() };
    const btn = card.el.querySelector('button.add-stock');
    btn.disabled = true;
    try {
      const r = await api('POST', `/admin/coupon-templates/${id}/stock`, { add: n, op_id: card.pending.opID });
      if (r.status === 200) {
        card.pending = null;
        input.value = '';
        showError('');
        notify(r.body.added
          ? `Added ${n} to coupon template ${id}; its stock is now ${r.body.template.stock}.`
          : `Coupon template ${id}: that addition was already applied; nothing added twice.`);
        refreshTemplates();
      } else if (r.status !== 401) {
        showError(`Could not add stock to coupon template ${id}: ` + describe(r) + ' Click again to retry the same addition.');
      }
    } catch {
      showError('No answer from the server: the stock may or may not have been added. ' +
        'Click Add stock again: the retry reuses the same operation id, so it cannot add twice.');
    } finally {
      btn.disabled = false;
    }
  }

  function newCard(id) {
    const el = cardTemplate.content.firstElementChild.cloneNode(true);
    el.dataset.templateId = id;
    const card = { el, pending: null };
    el.querySelector('form').addEventListener('submit', e => { e.preventDefault(); addStock(id, card); });
    return card;
  }

  function claimWindow(t) {
    const start = apiTime(t.start_at), end = apiTime(t.end_at);
    if (start === null && end === null) return 'Claimable any time';
    return `Claims ${start === null ? 'open now' : 'from ' + zoned(start)} ${end === null ? 'with no end' : 'until ' + zoned(end)}` +
      (t.ended ? ' (ended)' : '');
  }

  function fill(card, t, st) {
    const el = card.el, set = (cls, text) => { el.querySelector('.' + cls).textContent = text; };
    set('name', `${t.id} · ${t.name}`);
    set('terms', `${couponValue(t)} · valid ${validFor(t.valid_for)} · ` +
      (t.per_user_limit > 0 ? `${t.per_user_limit} per shopper` : 'no limit per shopper'));
    set('window', claimWindow(t));
    if (!st) return; // stats failed this round: keep the last ones
    const values = [st.stock, st.issued, st.redis_remaining, st.used, st.expired, st.pending_ops];
    FIGURES.forEach((cls, i) => set(cls, values[i]));
    // Off while claims are in flight; for good if Redis lost or gained units.
    el.querySelector('.redis-remaining').classList.toggle('lagging', st.redis_remaining !== st.stock - st.issued);
    // Each bar is a sub-stock's remaining against its share of the stock.
    const subs = st.sub_stocks || [];
    const share = Math.max(1, Math.ceil(st.stock / Math.max(1, subs.length)));
    el.querySelector('.subs tbody').replaceChildren(...subs.map(s => {
      const tr = document.createElement('tr');
      tr.title = s.tag; // the sub-stock's Redis key tag
      const pct = s.remaining == null ? 0 : Math.min(100, 100 * s.remaining / share);
      tr.innerHTML = `<td>#${Number(s.index)}</td><td class="remaining"><div class="meter">` +
        `<span class="gauge"><span style="width: ${pct}%"></span></span><span class="n"></span></div></td>`;
      tr.querySelector('.n').textContent = s.remaining ?? 'no answer';
      return tr;
    }));
  }

  // refreshTemplates reloads the templates and their stats, then runs
  // again in 2 s while the page has a token.
  async function refreshTemplates() {
    clearTimeout(timer);
    if (!memoryToken) return;
    try {
      const r = await api('GET', '/admin/coupon-templates');
      if (r.status === 200) {
        const templates = (r.body.templates || []).sort((a, b) => b.id - a.id); // newest first
        const stats = await Promise.all(templates.map(t =>
          api('GET', `/admin/coupon-templates/${t.id}/stats`).then(s => s.status === 200 ? s.body : null, () => null)));
        const seen = new Set();
        templates.forEach((t, i) => {
          seen.add(t.id);
          let card = cards.get(t.id);
          if (!card) {
            card = newCard(t.id);
            cards.set(t.id, card);
          }
          fill(card, t, stats[i]);
          // Move a card only when out of place: moving it would blur its input.
          if (list.children[i] !== card.el) list.insertBefore(card.el, list.children[i] || null);
        });
        for (const [id, card] of cards) {
          if (!seen.has(id)) { card.el.remove(); cards.delete(id); }
        }
        $('no-templates').hidden = templates.length > 0;
      } else if (r.status !== 401) {
        showError('Could not list the coupon templates: ' + describe(r));
      }
    } catch { /* admin.js's refresh reports an unreachable server */ }
    if (memoryToken) timer = setTimeout(refreshTemplates, TEMPLATES_MS);
  }

  // A token entered on the page starts the refresh (admin.js saves it first).
  $('token-form').addEventListener('submit', () => refreshTemplates());
  refreshTemplates();
}
