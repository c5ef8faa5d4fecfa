// The page of `pocketlora serve` (docs/APP.md): plain JS, no framework, no build step. It talks only to the JSON
// API; every request carries the per-start token from the page's own URL (header, or ?token= where a header
// cannot be set: EventSource, download links). Errors the API returns are shown in the page, never in alert().
'use strict';
(() => {
  const token = new URLSearchParams(location.search).get('token') || '';
  const $ = (id) => document.getElementById(id);

  // What the page knows; every list is replaced whole from the API (the server is the truth).
  const state = {
    status: null,
    models: [],
    datasets: [],
    jobs: [],
    adapters: [],
    adapterProblems: [],
    policy: null,
    selectedJob: null,        // job id shown on the Runs screen
    metrics: new Map(),       // job id -> [{step, loss, tokens_per_s, val_loss}]
    lastStep: new Map(),      // job id -> the latest `step` event (ETA, memory)
    statsDataset: null,       // dataset shown in the Data screen's preview
    exports: new Map(),       // adapter name -> {format, files: [{name, size_bytes, url}]} of its latest export
    renameDrafts: new Map(),  // adapter name -> the new name being typed (kept when the list is redrawn)
  };

  // ---------- messages ----------
  const kMaxMessages = 6;
  const kMaxNotices = 2;  // notices are news, not history: only the latest stay beside the errors
  function showMessage(text, kind = 'info') {
    const box = $('messages');
    const div = document.createElement('div');
    div.className = `msg ${kind}`;
    div.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    const span = document.createElement('span');
    span.className = 'text';
    span.textContent = text;
    const close = document.createElement('button');
    close.type = 'button';
    close.setAttribute('aria-label', 'dismiss');
    close.textContent = '×';
    close.addEventListener('click', () => div.remove());
    div.append(span, close);
    box.prepend(div);
    [...box.querySelectorAll('.msg:not(.error)')].slice(kMaxNotices).forEach((m) => m.remove());
    while (box.children.length > kMaxMessages) box.lastElementChild.remove();
    // Notices go by themselves; errors stay until dismissed, so a person (or a test) can read them.
    if (kind !== 'error') setTimeout(() => div.remove(), 6000);
    return div;
  }
  const showError = (context, err) => showMessage(`${context}: ${err.message}`, 'error');

  // ---------- the API ----------
  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  // The API's error body is {"error": {"code", "message"}}; anything else (a proxy's page) still gives a message.
  function apiErrorFrom(status, text) {
    try {
      const e = JSON.parse(text).error;
      if (e && e.message) return new ApiError(status, e.code || 'error', e.message);
    } catch (_) { /* not JSON: fall through */ }
    return new ApiError(status, 'http', `HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}`);
  }

  function withToken(url) {
    return `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
  }

  async function request(method, path, body, signal) {
    const headers = { 'X-PocketLoRA-Token': token };
    const init = { method, headers, signal };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, 'network', `cannot reach the server (${e.message})`);
    }
    if (!res.ok) throw apiErrorFrom(res.status, await res.text());
    return res;
  }

  async function api(method, path, body) {
    const res = await request(method, path, body);
    const text = await res.text();
    return text ? JSON.parse(text) : null;
  }

  const enc = encodeURIComponent;

  // ---------- formatting ----------
  function fmtBytes(n) {
    if (n === null || n === undefined || Number.isNaN(n)) return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    let v = Number(n);
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
    return `${v.toFixed(i === 0 ? 0 : v < 10 ? 2 : 1)} ${units[i]}`;
  }
  function fmtNum(v, digits = 3) {
    if (v === null || v === undefined || Number.isNaN(Number(v))) return '—';
    const x = Number(v);
    if (Number.isInteger(x)) return x.toLocaleString('en-US');
    return Math.abs(x) >= 1000 ? Math.round(x).toLocaleString('en-US') : x.toPrecision(digits);
  }
  function fmtDuration(s) {
    if (s === null || s === undefined || !Number.isFinite(Number(s))) return '—';
    s = Math.max(0, Math.round(Number(s)));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }
  const fmtPct = (f) => (f === null || f === undefined ? '—' : `${(Number(f) * 100).toFixed(1)} %`);
  // A list endpoint answers an array, or an object holding it next to "problems" (unreadable entries).
  const listOf = (v, key) => (Array.isArray(v) ? v : (v && v[key]) || []);

  function el(tag, props = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'class') e.className = v;
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  function fillSelect(select, items, label, value, keep) {
    const previous = keep ? select.value : null;
    select.replaceChildren(...items.map((it) => el('option', { value: value(it) }, label(it))));
    if (previous && items.some((it) => value(it) === previous)) select.value = previous;
  }

  // ---------- confirmation (in-page <dialog>, resolves true on "Delete") ----------
  function confirmAction(text, okLabel = 'Delete') {
    const dlg = $('confirm');
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = okLabel;
    return new Promise((resolve) => {
      dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
      dlg.returnValue = '';
      dlg.showModal();
    });
  }

  // ---------- screens ----------
  const screens = ['data', 'train', 'runs', 'try', 'adapters'];
  function showScreen() {
    const name = screens.includes(location.hash.slice(1)) ? location.hash.slice(1) : 'data';
    for (const s of screens) $(`screen-${s}`).hidden = s !== name;
    for (const a of document.querySelectorAll('.tabs a')) a.classList.toggle('active', a.dataset.screen === name);
    if (name === 'runs') renderCharts();
  }
  const go = (name) => { location.hash = `#${name}`; };

  // ---------- status / policy ----------
  async function loadStatus() {
    state.status = await api('GET', '/api/status');
    setPolicy(state.status.policy);
    const backend = $('t-backend').options[0];
    backend.textContent = `the server's (${state.status.backend || 'auto'})`;
    // The runner could not start (another runner holds the queue): jobs queue but do not run; say so once.
    if (state.status.runner_error && state.status.runner_error !== state.runnerError)
      showMessage(`Jobs will not run: ${state.status.runner_error}`, 'error');
    state.runnerError = state.status.runner_error;
  }

  function setPolicy(p) {
    state.policy = p || null;
    const pill = $('policy-pill');
    if (!p) {
      pill.textContent = 'policy off';
      pill.className = 'pill';
    } else {
      pill.textContent = `policy ${p.state}`;
      pill.className = `pill ${/train/i.test(p.state) ? 'ok' : /cool|pause|wait/i.test(p.state) ? 'warn' : ''}`;
      pill.title = p.reason || 'device policy';
    }
    renderRunStats();
  }

  // ---------- models ----------
  async function loadModels() {
    state.models = listOf(await api('GET', '/api/models'), 'models');
    const label = (m) => m.name;
    const value = (m) => m.name;
    fillSelect($('stats-model'), state.models, label, value, true);
    fillSelect($('t-model'), state.models, label, value, true);
    fillSelect($('g-model'), state.models, label, value, true);
    if (!state.models.length) showMessage('The server offers no model: start it with --model PATH.', 'error');
    onModelChange();
  }
  const modelByName = (name) => state.models.find((m) => m.name === name);

  // ---------- Data ----------
  async function loadDatasets() {
    state.datasets = listOf(await api('GET', '/api/datasets'), 'datasets');
    const body = $('datasets-table').tBodies[0];
    // An entry that no longer reads carries "error" instead of its format and records.
    body.replaceChildren(...state.datasets.map((d) => el('tr', { dataset: { name: d.name } },
      // A phone shows format and size under the name instead of in their own columns.
      el('td', { class: 'name' }, d.name, el('div', { class: 'sub' },
        `${d.error ? 'unreadable' : d.format || '—'} · ${fmtBytes(d.size_bytes)}`)),
      d.error ? el('td', { class: 'bad wide-only', title: d.error }, 'unreadable')
        : el('td', { class: 'wide-only' }, d.format || '—'),
      el('td', { class: 'num' }, fmtNum(d.records)),
      el('td', { class: 'num wide-only' }, fmtBytes(d.size_bytes)),
      el('td', { class: 'actions' },
        el('button', { type: 'button', class: 'small secondary', onclick: () => showStats(d.name) }, 'Preview'),
        el('button', { type: 'button', class: 'small danger', onclick: () => deleteDataset(d.name) }, 'Delete')))));
    $('datasets-empty').hidden = state.datasets.length > 0;
    fillSelect($('t-dataset'), state.datasets.filter((d) => !d.error), (d) => d.name, (d) => d.name, true);
    if (state.statsDataset && !state.datasets.some((d) => d.name === state.statsDataset)) {
      state.statsDataset = null;
      $('stats-card').hidden = true;
    }
    validateTrain();
  }

  // Upload through XMLHttpRequest: fetch() reports no upload progress. The server streams the body to disk.
  function upload(file, name) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', `/api/datasets?name=${enc(name)}`);
      xhr.setRequestHeader('X-PocketLoRA-Token', token);
      xhr.setRequestHeader('Content-Type', 'application/octet-stream');
      const bar = $('upload-progress');
      bar.hidden = false;
      bar.value = 0;
      xhr.upload.addEventListener('progress', (e) => {
        if (e.lengthComputable) {
          bar.value = (100 * e.loaded) / e.total;
          $('upload-state').textContent = `${fmtBytes(e.loaded)} of ${fmtBytes(e.total)}`;
        }
      });
      xhr.addEventListener('load', () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.responseText ? JSON.parse(xhr.responseText) : null);
        else reject(apiErrorFrom(xhr.status, xhr.responseText));
      });
      // A server that refuses early (name taken, too large) may close the connection before the body is sent.
      xhr.addEventListener('error', () => reject(new ApiError(0, 'network',
        'the upload was interrupted: the connection closed before the server answered')));
      xhr.send(file);
    });
  }

  async function onUpload(ev) {
    ev.preventDefault();
    const file = $('upload-file').files[0];
    if (!file) {
      showMessage('Upload: choose a file first.', 'error');
      return;
    }
    // The store's names are [A-Za-z0-9._-] starting with a letter or digit: a file name is made one.
    const name = $('upload-name').value.trim() || file.name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[._-]+/, '');
    if (state.datasets.some((d) => d.name === name)) {
      showMessage(`Upload of ${file.name} refused: a dataset named ${name} exists already (delete it, or give ` +
                  'another name).', 'error');
      return;
    }
    const limit = state.status && state.status.max_upload_bytes;
    // Refused here rather than after sending megabytes the server would refuse (413) anyway.
    if (limit && file.size > limit) {
      showMessage(`Upload of ${file.name} refused: ${fmtBytes(file.size)} is more than the server's limit of ` +
                  `${fmtBytes(limit)} (serve --max-upload).`, 'error');
      return;
    }
    $('upload-button').disabled = true;
    $('upload-state').textContent = 'uploading…';
    try {
      const entry = await upload(file, name);
      $('upload-state').textContent = 'uploaded';
      $('upload-progress').value = 100;
      showMessage(`Uploaded ${entry && entry.name ? entry.name : name}.`);
      $('upload-form').reset();
      $('upload-name').placeholder = 'from the file name';
      await loadDatasets();
      await showStats(entry && entry.name ? entry.name : name);
    } catch (e) {
      $('upload-state').textContent = 'failed';
      showError(`Upload of ${file.name} failed`, e);
    } finally {
      $('upload-button').disabled = false;
      $('upload-progress').hidden = true;
    }
  }

  async function deleteDataset(name) {
    if (!(await confirmAction(`Delete the dataset ${name}?`))) return;
    try {
      await api('DELETE', `/api/datasets/${enc(name)}`);
      showMessage(`Deleted the dataset ${name}.`);
    } catch (e) {
      showError(`Deleting ${name} failed`, e);
    }
    await loadDatasets().catch((e) => showError('Reading the datasets failed', e));
  }

  async function showStats(name) {
    state.statsDataset = name;
    $('stats-card').hidden = false;
    $('stats-name').textContent = name;
    for (const tr of $('datasets-table').tBodies[0].rows) tr.classList.toggle('selected', tr.dataset.name === name);
    const model = $('stats-model').value;
    const dl = $('stats');
    const preview = $('stats-preview');
    if (!model) {
      dl.replaceChildren();
      preview.replaceChildren(el('p', { class: 'hint' }, 'Token statistics need a model (its tokenizer).'));
      return;
    }
    dl.replaceChildren(el('div', {}, el('dt', {}, 'computing…')));
    preview.replaceChildren();
    const seq = Number($('stats-seq-len').value) || 256;
    try {
      const s = await api('GET', `/api/datasets/${enc(name)}/stats?model=${enc(model)}&seq_len=${seq}`);
      if (state.statsDataset !== name) return;
      const rows = [
        ['Records', fmtNum(s.records), 'records'],
        ['With input', fmtNum(s.alpaca_with_input), 'with-input'],
        ['Tokens', fmtNum(s.tokens), 'tokens'],
        ['Tokens min / median / max', `${fmtNum(s.tokens_min)} / ${fmtNum(s.tokens_median)} / ${fmtNum(s.tokens_max)}`, 'lengths'],
        ['Tokens mean / p95', `${fmtNum(s.tokens_mean)} / ${fmtNum(s.tokens_p95)}`, 'mean'],
        ['Masked (prompt) fraction', fmtPct(s.masked_fraction), 'masked'],
        [`Truncated at ${fmtNum(s.seq_len)}`, fmtNum(s.truncated), 'truncated'],
        ['Template', s.template || '—', 'template'],
      ];
      dl.replaceChildren(...rows.map(([k, v, id]) => el('div', {}, el('dt', {}, k), el('dd', { 'data-stat': id }, v))));
      const recs = s.preview || [];
      preview.replaceChildren(...recs.map((r, i) => el('div', { class: 'record' },
        el('p', {}, el('span', { class: 'who' }, `#${i + 1} prompt: `), r.prompt),
        el('p', {}, el('span', { class: 'who' }, 'response: '), r.response))));
    } catch (e) {
      dl.replaceChildren();
      preview.replaceChildren(el('p', { class: 'field-errors' }, e.message));
      showError(`Statistics of ${name} failed`, e);
    }
  }

  // ---------- Train ----------
  const kAdapterName = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

  function onModelChange() {
    const m = modelByName($('t-model').value);
    const box = $('t-targets');
    const checked = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
    const fresh = box.children.length === 0;
    box.replaceChildren(...(m ? m.targets : []).map((t) => el('label', {},
      el('input', { type: 'checkbox', name: 'targets', value: t, checked: fresh || checked.has(t) }), t)));
    const ctx = m && m.config ? m.config.max_seq_len : null;
    $('t-context').textContent = ctx ? `model context: ${ctx}` : '';
    if (ctx) $('t-seq-len').max = ctx;
    validateTrain();
  }

  // The form against the chosen model: returns the job options, or null after marking what is wrong.
  function trainOptions(errors) {
    const m = modelByName($('t-model').value);
    const bad = (id, msg) => { errors.push(msg); $(id).setAttribute('aria-invalid', 'true'); };
    for (const i of $('train-form').querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
    const int = (id) => Number($(id).value);
    if (!m) bad('t-model', 'Choose a model.');
    if (!$('t-dataset').value) bad('t-dataset', 'Choose a dataset (upload one on the Data screen).');
    const name = $('t-adapter').value.trim();
    if (!kAdapterName.test(name))
      bad('t-adapter', 'Adapter name: 1 to 64 of A-Z a-z 0-9 . _ - starting with a letter or digit.');
    else if (state.adapters.some((a) => a.name === name)) bad('t-adapter', `An adapter named ${name} exists already.`);
    else if (state.jobs.some((j) => (j.state === 'queued' || j.state === 'running') && j.adapter === name))
      bad('t-adapter', `A job in the queue already trains an adapter named ${name}.`);
    const rank = int('t-rank');
    if (!Number.isInteger(rank) || rank < 1) bad('t-rank', 'Rank must be an integer ≥ 1.');
    const alpha = Number($('t-alpha').value);
    if (!(alpha > 0)) bad('t-alpha', 'Alpha must be > 0.');
    const batch = int('t-batch');
    if (!Number.isInteger(batch) || batch < 1) bad('t-batch', 'Batch must be an integer ≥ 1.');
    const lr = Number($('t-lr').value);
    if (!(lr > 0)) bad('t-lr', 'Learning rate must be > 0.');
    const length = int('t-length');
    const unit = $('t-length-unit').value;
    if (!Number.isInteger(length) || length < 1) bad('t-length', `${unit === 'steps' ? 'Steps' : 'Epochs'} must be an integer ≥ 1.`);
    const seq = int('t-seq-len');
    const ctx = m && m.config ? m.config.max_seq_len : 0;
    if (!Number.isInteger(seq) || seq < 2) bad('t-seq-len', 'Sequence length must be an integer ≥ 2.');
    else if (ctx && seq > ctx) bad('t-seq-len', `Sequence length ${seq} is longer than the model's context (${ctx}).`);
    const targets = [...$('t-targets').querySelectorAll('input:checked')].map((i) => i.value);
    if (!targets.length) errors.push('Choose at least one target module.');
    if (errors.length) return null;
    const o = { model: m.name, dataset: $('t-dataset').value, adapter_name: name, rank, alpha, batch, lr,
                seq_len: seq, targets };
    o[unit] = length;
    if ($('t-backend').value) o.backend = $('t-backend').value;
    return o;
  }

  let planSeq = 0;
  let planTimer = null;
  function validateTrain() {
    const errors = [];
    const o = trainOptions(errors);
    $('train-errors').replaceChildren(...errors.map((e) => el('li', {}, e)));
    $('t-length-label').textContent = $('t-length-unit').value === 'steps' ? 'Steps' : 'Epochs';
    $('train-start').disabled = !o;
    clearTimeout(planTimer);
    if (!o) {
      planSeq += 1;
      $('plan').replaceChildren(el('span', { class: 'hint' }, 'The planned peak memory appears here once the form is valid.'));
      return null;
    }
    planTimer = setTimeout(() => plan(o), 250);
    return o;
  }

  // The trainer's own memory plan and checks for these options (POST /api/plan), before anything starts.
  async function plan(o) {
    const seq = ++planSeq;
    $('plan').replaceChildren(el('span', { class: 'hint' }, 'planning…'));
    try {
      const p = await api('POST', '/api/plan', o);
      if (seq !== planSeq) return;
      const mem = p.memory || {};
      const parts = [el('span', {}, 'Planned peak memory ', el('strong', { id: 'plan-peak', 'data-bytes': mem.planned_peak_bytes },
        fmtBytes(mem.planned_peak_bytes)))];
      if (mem.limit_bytes) parts.push(` of ${fmtBytes(mem.limit_bytes)} allowed`);
      parts.push(el('br'), el('span', { class: 'hint' },
        `resident ${fmtBytes(mem.resident_bytes)} · per step ${fmtBytes(mem.step_arena_bytes)} · ` +
        `micro-batch ${fmtNum(mem.micro_batch)} × ${fmtNum(mem.grad_accum)} · ` +
        `${mem.checkpointing ? `checkpointing ${mem.checkpointing} · ` : ''}${fmtNum(p.total_steps)} steps`));
      $('plan').replaceChildren(...parts);
    } catch (e) {
      if (seq !== planSeq) return;
      // The trainer refuses these options (e.g. no record fits the sequence length): nothing to start.
      $('train-start').disabled = true;
      $('plan').replaceChildren(el('span', { class: 'field-errors', id: 'plan-error' }, `Cannot train with these settings: ${e.message}`));
    }
  }

  async function onTrain(ev) {
    ev.preventDefault();
    const o = validateTrain();
    if (!o) return;
    $('train-start').disabled = true;
    try {
      const job = await api('POST', '/api/jobs', o);
      showMessage(`Job #${job.id} ${job.state}: it becomes the adapter ${job.adapter || o.adapter_name}.`);
      upsertJob(job);
      await selectJob(job.id);
      go('runs');
    } catch (e) {
      showError('Starting the training failed', e);
    } finally {
      validateTrain();
    }
  }

  // ---------- Runs ----------
  const jobOptions = (j) => j.options || j.train || {};
  const jobAdapter = (j) => j.adapter || jobOptions(j).adapter_name || '—';

  async function loadJobs() {
    state.jobs = listOf(await api('GET', '/api/jobs'), 'jobs');
    if (state.selectedJob === null && state.jobs.length) {
      const running = state.jobs.find((j) => j.state === 'running');
      await selectJob((running || state.jobs[state.jobs.length - 1]).id);
    } else if (state.selectedJob !== null) {
      await selectJob(state.selectedJob);
    }
    renderJobs();
  }

  function upsertJob(job) {
    const i = state.jobs.findIndex((j) => j.id === job.id);
    if (i >= 0) state.jobs[i] = { ...state.jobs[i], ...job };
    else state.jobs.push(job);
    renderJobs();
  }

  function renderJobs() {
    const body = $('jobs-table').tBodies[0];
    body.replaceChildren(...state.jobs.slice().reverse().map((j) => {
      const live = j.state === 'queued' || j.state === 'running';
      return el('tr', { class: j.id === state.selectedJob ? 'selected' : '', dataset: { job: j.id },
                        onclick: () => selectJob(j.id) },
        el('td', {}, `${j.id}`),
        el('td', {}, jobAdapter(j)),
        el('td', {}, el('span', { class: `state ${j.state}`, title: j.last_error ? j.last_error.message : '' }, j.state)),
        // A job that never ran has no total yet.
        el('td', { class: 'num' }, `${fmtNum(j.steps_done)} / ${j.total_steps ? fmtNum(j.total_steps) : '—'}`),
        el('td', { class: 'actions' }, live
          ? el('button', { type: 'button', class: 'small secondary', onclick: (e) => { e.stopPropagation(); cancelJob(j.id); } }, 'Cancel')
          : null));
    }));
    $('jobs-empty').hidden = state.jobs.length > 0;
    renderRunStats();
  }

  async function selectJob(id) {
    state.selectedJob = id;
    try {
      const j = await api('GET', `/api/jobs/${id}`);
      if (state.selectedJob !== id) return;
      const { metrics, ...job } = j;
      // Keep what `step` events added after the server read its metrics file.
      const known = state.metrics.get(id) || [];
      const merged = (metrics || []).slice();
      const last = merged.length ? merged[merged.length - 1].step : -Infinity;
      for (const p of known) if (p.step > last) merged.push(p);
      state.metrics.set(id, merged);
      upsertJob(job);
    } catch (e) {
      showError(`Reading job #${id} failed`, e);
    }
    renderCharts();
    renderRunStats();
  }

  async function cancelJob(id) {
    try {
      upsertJob(await api('POST', `/api/jobs/${id}/cancel`));
      showMessage(`Cancel of job #${id} requested.`);
    } catch (e) {
      showError(`Cancelling job #${id} failed`, e);
    }
  }

  function renderRunStats() {
    const j = state.jobs.find((x) => x.id === state.selectedJob);
    const set = (id, v) => { $(id).textContent = v; };
    const p = state.policy;
    const ev = state.lastStep.get(state.selectedJob);
    // Without a device policy the runner still reports its own status with each step.
    set('run-policy', p ? `${p.state}${p.reason ? ` (${p.reason})` : ''}`
      : ev && ev.policy_status ? String(ev.policy_status) : 'off');
    set('run-temp', p && p.temperature_c !== null && p.temperature_c !== undefined ? `${Number(p.temperature_c).toFixed(1)} °C` : '—');
    set('run-battery', p && p.battery_pct !== null && p.battery_pct !== undefined
      ? `${Math.round(p.battery_pct)} %${p.charging ? ' charging' : ''}` : '—');
    if (!j) {
      set('run-title', '—');
      return;
    }
    const pts = state.metrics.get(j.id) || [];
    const last = pts.length ? pts[pts.length - 1] : null;
    set('run-title', `#${j.id} → ${jobAdapter(j)}`);
    set('run-state', j.state + (j.last_error ? `: ${j.last_error.message}` : ''));
    set('run-step', `${fmtNum(j.steps_done)} / ${fmtNum(j.total_steps)}`);
    set('run-eta', j.state === 'running' && ev ? fmtDuration(ev.eta_s) : j.state === 'done' ? 'finished' : '—');
    set('run-loss', last ? fmtNum(last.loss, 4) : '—');
    set('run-tps', last ? fmtNum(last.tokens_per_s, 4) : '—');
    const bar = $('run-progress');
    bar.max = Math.max(1, j.total_steps || 1);
    bar.value = j.steps_done || 0;
  }

  // Hand-written SVG line chart: series of [x, y], axes with min/max labels, data-points = points drawn.
  function drawChart(svg, series, yLabel) {
    // The drawing is as wide as its box, so the labels keep their size on a phone and on a desktop.
    const W = Math.max(240, Math.round(svg.getBoundingClientRect().width) || 320), H = 180, L = 48, R = 8, T = 16, B = 22;
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p[1]));
    const ns = 'http://www.w3.org/2000/svg';
    const mk = (tag, attrs, text) => {
      const e = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
      if (text !== undefined) e.textContent = text;
      return e;
    };
    const kids = [];
    svg.dataset.points = String(all.length);
    if (!all.length) {
      kids.push(mk('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no steps yet'));
      svg.replaceChildren(...kids);
      return;
    }
    let x0 = Math.min(...all.map((p) => p[0])), x1 = Math.max(...all.map((p) => p[0]));
    let y0 = Math.min(...all.map((p) => p[1])), y1 = Math.max(...all.map((p) => p[1]));
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    if (y1 === y0) { const d = Math.abs(y0) * 0.1 || 1; y0 -= d; y1 += d; }
    const pad = (y1 - y0) * 0.05;
    y0 -= pad; y1 += pad;
    const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
    const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
    for (let i = 0; i <= 3; i += 1) {
      const y = y0 + ((y1 - y0) * i) / 3;
      kids.push(mk('line', { class: 'grid-line', x1: L, x2: W - R, y1: sy(y), y2: sy(y) }));
      kids.push(mk('text', { x: L - 4, y: sy(y) + 3, 'text-anchor': 'end' }, fmtNum(y, 3)));
    }
    kids.push(mk('line', { class: 'axis', x1: L, x2: L, y1: T, y2: H - B }));
    kids.push(mk('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }));
    kids.push(mk('text', { x: L, y: H - 6, 'text-anchor': 'start' }, `step ${Math.round(x0 < 0 ? 0 : x0)}`));
    kids.push(mk('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, `${Math.round(x1)}`));
    kids.push(mk('text', { x: (L + W) / 2, y: H - 6, 'text-anchor': 'middle' }, yLabel));
    let legendX = W - R;
    for (const s of series.slice().reverse()) {
      if (!s.legend || !s.points.some((p) => Number.isFinite(p[1]))) continue;
      const t = mk('text', { x: legendX, y: 10, 'text-anchor': 'end', class: `legend ${s.cls || ''}` }, s.legend);
      kids.push(t);
      legendX -= 6.5 * s.legend.length + 12;
    }
    for (const s of series) {
      const pts = s.points.filter((p) => Number.isFinite(p[1]));
      if (pts.length === 1) kids.push(mk('circle', { class: 'dot', cx: sx(pts[0][0]), cy: sy(pts[0][1]), r: 3 }));
      else if (pts.length > 1)
        kids.push(mk('polyline', { class: `line ${s.cls || ''}`, points: pts.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ') }));
    }
    svg.replaceChildren(...kids);
  }

  function renderCharts() {
    const pts = state.metrics.get(state.selectedJob) || [];
    const num = (v) => (v === null || v === undefined ? NaN : Number(v));
    drawChart($('chart-loss'), [
      { points: pts.map((p) => [p.step, num(p.loss)]), legend: '— train' },
      { points: pts.map((p) => [p.step, num(p.val_loss)]), cls: 'val', legend: '- - validation' },
    ], 'loss');
    drawChart($('chart-tps'), [{ points: pts.map((p) => [p.step, num(p.tokens_per_s)]) }], 'tokens/s');
  }

  const kMaxLogLines = 300;
  function addLog(level, message) {
    const ol = $('log');
    const t = new Date();
    ol.append(el('li', { class: level || 'info' },
      el('time', {}, t.toTimeString().slice(0, 8)), message));
    while (ol.children.length > kMaxLogLines) ol.firstElementChild.remove();
    ol.scrollTop = ol.scrollHeight;
  }

  // ---------- Try ----------
  let generation = null;  // the AbortController of the prompt run in flight

  // One POST /api/generate, its text/event-stream read as it arrives: `token` appends, `done` reports.
  // The column shows the prompt (muted) and then the generated text.
  async function streamGenerate(body, column, info, signal) {
    const out = el('span', { class: 'gen' });
    column.replaceChildren(el('span', { class: 'prompt' }, body.prompt), out);
    info.textContent = 'waiting…';
    try {
      const res = await request('POST', '/api/generate', body, signal);
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buf = '';
      let finished = false;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let event = 'message';
          const data = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          }
          if (!data.length) continue;
          const d = JSON.parse(data.join('\n'));
          if (event === 'token') {
            out.textContent += d.text;
            info.textContent = 'generating…';
          } else if (event === 'done') {
            finished = true;
            info.textContent = `${fmtNum(d.tokens)} tokens · ${fmtNum(d.tokens_per_s, 4)} tokens/s · stop: ${d.stop}`;
            info.dataset.stop = d.stop;
          } else if (event === 'error') {
            finished = true;
            info.textContent = `error: ${d.message}`;
            showMessage(`Generation failed: ${d.message}`, 'error');
          }
        }
      }
      if (!finished) info.textContent = 'the stream ended early';
    } catch (e) {
      if (e.name === 'AbortError') {
        info.textContent = 'stopped';
        info.dataset.stop = 'stopped';
        return;
      }
      info.textContent = `error: ${e.message}`;
      showError('Generation failed', e);
    }
  }

  async function onGenerate(ev) {
    ev.preventDefault();
    const prompt = $('g-prompt').value;
    const model = $('g-model').value;
    if (!model || !prompt.trim()) {
      showMessage('Try: choose a model and write a prompt.', 'error');
      return;
    }
    const adapter = $('g-adapter').value || null;
    const common = { model, prompt, max_tokens: Number($('g-max').value) || 64,
                     temperature: Number($('g-temp').value) || 0, seed: 1 };
    generation = new AbortController();
    const { signal } = generation;
    $('g-run').disabled = true;
    $('g-stop').disabled = false;
    $('g-adapter-name').textContent = adapter || '(none chosen)';
    for (const id of ['g-info-base', 'g-info-adapter']) delete $(id).dataset.stop;
    const runs = [streamGenerate({ ...common, adapter: null }, $('g-out-base'), $('g-info-base'), signal)];
    if (adapter) runs.push(streamGenerate({ ...common, adapter }, $('g-out-adapter'), $('g-info-adapter'), signal));
    else {
      $('g-out-adapter').textContent = '';
      $('g-info-adapter').textContent = 'choose an adapter to compare';
    }
    await Promise.all(runs);
    generation = null;
    $('g-run').disabled = false;
    $('g-stop').disabled = true;
  }

  // ---------- Adapters ----------
  async function loadAdapters() {
    // An entry the store cannot read comes as {name, problems: [message]} among the others.
    const all = listOf(await api('GET', '/api/adapters'), 'adapters');
    state.adapters = all.filter((a) => !a.problems);
    state.adapterProblems = all.filter((a) => a.problems).map((a) => `${a.name}: ${a.problems.join('; ')}`);
    renderAdapters();
    const keep = $('g-adapter').value;
    $('g-adapter').replaceChildren(el('option', { value: '' }, '(base only)'),
      ...state.adapters.map((a) => el('option', { value: a.name }, a.enabled === false ? `${a.name} (disabled)` : a.name)));
    if (state.adapters.some((a) => a.name === keep)) $('g-adapter').value = keep;
    validateTrain();
  }

  function renderAdapters() {
    const list = $('adapters-list');
    list.replaceChildren(...state.adapters.map((a) => {
      const lora = a.lora || {};
      const training = a.training || {};
      const base = a.base || {};
      const exported = state.exports.get(a.name);
      const renameInput = el('input', { type: 'text', value: state.renameDrafts.get(a.name) ?? a.name,
        'aria-label': `new name for ${a.name}`, autocomplete: 'off',
        oninput: (e) => state.renameDrafts.set(a.name, e.target.value) });
      return el('div', { class: 'card adapter', dataset: { adapter: a.name } },
        el('div', { class: 'head' },
          el('h3', {}, a.name),
          el('label', { class: 'switch' },
            el('input', { type: 'checkbox', checked: a.enabled !== false, 'aria-label': `enable ${a.name}`,
                          onchange: (e) => setEnabled(a.name, e.target.checked) }),
            a.enabled !== false ? 'enabled' : 'disabled')),
        el('div', { class: 'meta' },
          [`base ${base.model || '—'}`, `r ${lora.r ?? '—'}`, `alpha ${lora.alpha ?? '—'}`,
           `targets ${(lora.targets || []).join(',') || '—'}`,
           training.steps !== null && training.steps !== undefined ? `${training.steps} steps` : null,
           training.final_loss !== null && training.final_loss !== undefined ? `final loss ${fmtNum(training.final_loss, 4)}` : null,
           fmtBytes(a.size_bytes)].filter(Boolean).join(' · ')),
        el('div', { class: 'row' },
          renameInput,
          el('button', { type: 'button', class: 'small secondary', onclick: () => renameAdapter(a.name, renameInput.value.trim()) }, 'Rename')),
        el('div', { class: 'row' },
          el('button', { type: 'button', class: 'small secondary', onclick: () => exportAdapter(a.name, 'peft') }, 'Export PEFT'),
          el('button', { type: 'button', class: 'small secondary', onclick: () => exportAdapter(a.name, 'gguf') }, 'Export GGUF'),
          el('button', { type: 'button', class: 'small danger', onclick: () => deleteAdapter(a.name) }, 'Delete')),
        exported ? el('div', { class: 'downloads' }, `${exported.format.toUpperCase()} export, to download:`,
          el('ul', {}, ...exported.files.map((f) => el('li', {},
            el('a', { href: withToken(f.url), download: f.name }, f.name), ` (${fmtBytes(f.size_bytes)})`)))) : null);
    }));
    $('adapters-empty').hidden = state.adapters.length > 0;
    $('adapters-problems').replaceChildren(...state.adapterProblems.map((p) => el('li', {}, `unreadable: ${p}`)));
  }

  async function adapterAction(what, fn) {
    try {
      await fn();
    } catch (e) {
      showError(what, e);
    }
    await loadAdapters().catch((e) => showError('Reading the adapters failed', e));
  }

  const setEnabled = (name, on) => adapterAction(`${on ? 'Enabling' : 'Disabling'} ${name} failed`,
    () => api('POST', `/api/adapters/${enc(name)}/${on ? 'enable' : 'disable'}`));

  function renameAdapter(name, to) {
    if (to === name) return Promise.resolve();
    if (!kAdapterName.test(to)) {
      showMessage(`Rename ${name}: "${to}" is not a valid name (1 to 64 of A-Z a-z 0-9 . _ - starting with a letter or digit).`, 'error');
      return Promise.resolve();
    }
    return adapterAction(`Renaming ${name} failed`, async () => {
      await api('POST', `/api/adapters/${enc(name)}/rename`, { to });
      state.exports.delete(name);
      state.renameDrafts.delete(name);
      showMessage(`Renamed ${name} to ${to}.`);
    });
  }

  const exportAdapter = (name, format) => adapterAction(`Exporting ${name} as ${format.toUpperCase()} failed`, async () => {
    const r = await api('POST', `/api/adapters/${enc(name)}/export`, { format });
    state.exports.set(name, { format, files: r.files || [] });
    showMessage(`Exported ${name} as ${format.toUpperCase()}: ${(r.files || []).length} file(s) to download.`);
  });

  async function deleteAdapter(name) {
    if (!(await confirmAction(`Delete the adapter ${name}? Its files are removed.`))) return;
    await adapterAction(`Deleting ${name} failed`, async () => {
      await api('DELETE', `/api/adapters/${enc(name)}`);
      state.exports.delete(name);
      state.renameDrafts.delete(name);
      showMessage(`Deleted the adapter ${name}.`);
    });
  }

  // ---------- live events ----------
  let events = null;
  let retry = 0;
  let everConnected = false;

  function setConn(text, cls) {
    const pill = $('conn');
    pill.textContent = text;
    pill.className = `pill ${cls}`;
  }

  function onStep(d) {
    const id = d.job;
    const pts = state.metrics.get(id) || [];
    if (!pts.length || pts[pts.length - 1].step < d.step)
      pts.push({ step: d.step, loss: d.loss, lr: d.lr, tokens_per_s: d.tokens_per_s, val_loss: d.val_loss });
    state.metrics.set(id, pts);
    state.lastStep.set(id, d);
    const j = state.jobs.find((x) => x.id === id);
    if (j) {
      j.steps_done = d.step;
      if (d.total) j.total_steps = d.total;
    }
    if (state.selectedJob === null) state.selectedJob = id;
    if (id === state.selectedJob) {
      renderCharts();
      renderRunStats();
    }
    if (j) renderJobs();
  }

  function onJob(job) {
    const before = state.jobs.find((j) => j.id === job.id);
    upsertJob(job);
    if (before && before.state !== job.state) {
      if (job.state === 'done') showMessage(`Job #${job.id} done: adapter ${jobAdapter(job)} is ready.`);
      else if (job.state === 'failed') showMessage(`Job #${job.id} failed: ${job.last_error ? job.last_error.message : 'see the log'}`, 'error');
    }
    if (state.selectedJob === null || (job.state === 'running' && !state.jobs.some((j) => j.id === state.selectedJob && j.state === 'running')))
      selectJob(job.id);
    if (job.state === 'done') loadAdapters().catch((e) => showError('Reading the adapters failed', e));
  }

  function connectEvents() {
    if (events) events.close();
    setConn(everConnected ? 'reconnecting' : 'connecting', 'warn');
    events = new EventSource(withToken('/api/events'));
    const on = (name, fn) => events.addEventListener(name, (e) => {
      try {
        fn(JSON.parse(e.data));
      } catch (err) {
        addLog('error', `bad ${name} event: ${err.message}`);
      }
    });
    events.addEventListener('open', () => {
      retry = 0;
      setConn('live', 'ok');
      // Whatever happened while the stream was down is read back whole.
      if (everConnected) refreshAll();
      everConnected = true;
    });
    events.addEventListener('error', () => {
      // The browser's own retry would keep the old stream's state; close, wait, and start over.
      events.close();
      events = null;
      setConn('reconnecting', 'bad');
      retry += 1;
      setTimeout(connectEvents, Math.min(15000, 500 * 2 ** Math.min(retry, 5)));
    });
    on('step', onStep);
    on('job', onJob);
    on('policy', setPolicy);
    on('log', (d) => addLog(d.level, d.message));
    on('adapters', () => loadAdapters().catch((e) => showError('Reading the adapters failed', e)));
  }

  async function refreshAll() {
    const parts = [['status', loadStatus], ['models', loadModels], ['datasets', loadDatasets],
                   ['adapters', loadAdapters], ['jobs', loadJobs]];
    await Promise.all(parts.map(([what, fn]) => fn().catch((e) => showError(`Reading the ${what} failed`, e))));
  }

  // ---------- wiring ----------
  function init() {
    window.addEventListener('hashchange', showScreen);
    window.addEventListener('resize', () => { if (!$('screen-runs').hidden) renderCharts(); });
    showScreen();
    $('upload-form').addEventListener('submit', onUpload);
    $('upload-file').addEventListener('change', () => {
      const f = $('upload-file').files[0];
      if (f && !$('upload-name').value) $('upload-name').placeholder = f.name;
    });
    $('stats-form').addEventListener('submit', (e) => {
      e.preventDefault();
      if (state.statsDataset) showStats(state.statsDataset);
    });
    $('stats-model').addEventListener('change', () => state.statsDataset && showStats(state.statsDataset));
    $('train-form').addEventListener('submit', onTrain);
    $('train-form').addEventListener('input', validateTrain);
    $('t-model').addEventListener('change', onModelChange);
    $('try-form').addEventListener('submit', onGenerate);
    $('g-stop').addEventListener('click', () => generation && generation.abort());
    if (!token) {
      showMessage('This page needs its token: open the address `pocketlora serve` printed (…/?token=…).', 'error');
      setConn('no token', 'bad');
      return;
    }
    refreshAll().then(connectEvents);
  }
  init();
})();
