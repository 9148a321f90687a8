// Renders /openapi.json as a list of operations: method, path, summary,
// parameters, request examples and the answers with their schemas.
(async function () {
  const root = document.getElementById('api');
  let doc;
  try {
    const r = await fetch('/openapi.json');
    doc = await r.json();
  } catch (e) {
    root.textContent = 'Could not load /openapi.json: ' + e;
    return;
  }
  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  };
  const resolve = (o) => {
    while (o && o.$ref) {
      o = o.$ref.replace(/^#\//, '').split('/').reduce((a, k) => a && a[k], doc);
    }
    return o;
  };
  // A schema with its references inlined, to a small depth.
  const expand = (s, depth) => {
    s = resolve(s);
    if (!s || typeof s !== 'object' || depth > 4) return s;
    const out = Array.isArray(s) ? [] : {};
    for (const [k, v] of Object.entries(s)) out[k] = expand(v, depth + 1);
    return out;
  };
  const block = (title, obj) => {
    const d = el('details');
    d.appendChild(el('summary', title));
    d.appendChild(el('pre', JSON.stringify(obj, null, 2)));
    return d;
  };
  root.textContent = '';
  root.appendChild(el('p', doc.info && doc.info.description));
  const paths = Object.keys(doc.paths).sort();
  for (const path of paths) {
    for (const [method, op] of Object.entries(doc.paths[path])) {
      if (!['get', 'post', 'put', 'delete', 'patch'].includes(method)) continue;
      const div = el('div', undefined, 'op');
      const h = el('div');
      h.appendChild(el('span', method.toUpperCase(), 'method'));
      h.appendChild(el('span', path, 'path'));
      if (op.security) h.appendChild(el('span', '  (admin token)'));
      div.appendChild(h);
      div.appendChild(el('div', op.summary || ''));
      const params = (op.parameters || []).map(resolve);
      if (params.length) {
        div.appendChild(el('div', 'Parameters: ' + params.map((p) => p.name + ' (' + p.in + ')').join(', ')));
      }
      const body = resolve(op.requestBody);
      if (body && body.content) {
        for (const [type, media] of Object.entries(body.content)) {
          const examples = media.example !== undefined ? { example: media.example } :
            Object.fromEntries(Object.entries(media.examples || {}).map(([k, v]) => [k, resolve(v).value]));
          div.appendChild(block('Request ' + type + ': examples', examples));
          div.appendChild(block('Request ' + type + ': schema', expand(media.schema, 0)));
        }
      }
      for (const [code, res] of Object.entries(op.responses || {})) {
        const r = resolve(res);
        const media = r.content && (r.content['application/json'] || Object.values(r.content)[0]);
        div.appendChild(media ? block(code + ' ' + r.description, expand(media.schema, 0)) : el('div', code + ' ' + r.description));
      }
      root.appendChild(div);
    }
  }
})();
