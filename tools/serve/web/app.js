// Placeholder until the page (branch h13-page) lands: shows /api/status with the token from the page's URL.
const token = new URLSearchParams(location.search).get('token') || '';
fetch('/api/status', { headers: { 'X-PocketLoRA-Token': token } })
  .then((r) => r.json())
  .then((j) => { document.getElementById('status').textContent = JSON.stringify(j, null, 2); });
