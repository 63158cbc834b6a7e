(function () {
  function hook() {
    var more = document.getElementById('more');
    var rows = document.getElementById('rows');
    if (!more || !rows || !('IntersectionObserver' in window)) return;
    var busy = false;
    var io = new IntersectionObserver(function (entries) {
      if (busy || !entries.some(function (e) { return e.isIntersecting; })) return;
      busy = true;
      fetch(more.href, { credentials: 'same-origin' }).then(function (r) { return r.text(); }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var next = doc.getElementById('rows');
        if (next) { while (next.firstChild) rows.appendChild(next.firstChild); }
        var nextMore = doc.getElementById('more');
        if (nextMore) { more.href = nextMore.href; busy = false; } else { io.disconnect(); more.remove(); }
      }).catch(function () { busy = false; });
    });
    io.observe(more);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', hook); else hook();
})();
// The list and reading (issue 17): the browser's time zone for the server's times, and the
// keyboard shortcuts (j/k move, o or Enter open, r/a/f reply/reply all/forward, / search,
// c compose, ? the list of shortcuts). Nothing here is needed: every action is also a link or
// a form.
(function () {
  // The zone (an IANA name) in a cookie the list reads; without it the list shows UTC.
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && /^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone) && document.cookie.indexOf('ec_tz=' + zone) < 0) {
      document.cookie = 'ec_tz=' + zone + '; Path=/; Max-Age=31536000; SameSite=Strict';
    }
  } catch (e) { /* no Intl: UTC */ }

  var KEYS = [
    ['j', 'Next message'], ['k', 'Previous message'], ['o', 'Open the message'], ['Enter', 'Open the message'],
    ['r', 'Reply'], ['a', 'Reply all'], ['f', 'Forward'], ['/', 'Search'], ['c', 'New message'],
    ['?', 'Show these shortcuts']
  ];

  function typing(t) {
    if (!t || !t.tagName) return false;
    var n = t.tagName.toLowerCase();
    return n === 'input' || n === 'textarea' || n === 'select' || t.isContentEditable;
  }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll('#rows tr[data-id]')); }
  function selected() { return document.querySelector('#rows tr.selected'); }
  function mailbox() {
    var m = document.querySelector('[data-mailbox]');
    return m ? m.getAttribute('data-mailbox') : null;
  }
  function select(tr) {
    var old = selected();
    if (old) old.classList.remove('selected');
    if (!tr) return;
    tr.classList.add('selected');
    var link = tr.querySelector('a.subject');
    if (link) link.focus();
  }
  function move(step) {
    var all = rows();
    if (!all.length) return;
    var i = all.indexOf(selected());
    if (i < 0) { var f = all.indexOf(document.activeElement && document.activeElement.closest ? document.activeElement.closest('tr') : null); i = f; }
    var next = i < 0 ? 0 : Math.min(all.length - 1, Math.max(0, i + step));
    select(all[next]);
  }
  function go(href) { if (href) window.location.href = href; }
  function compose(mode) {
    var onPage = document.getElementById(mode === 'reply' ? 'reply' : mode === 'reply-all' ? 'reply-all' : 'forward');
    if (onPage) return go(onPage.href);
    var tr = selected(), m = mailbox();
    if (tr && m) go('/inbox/' + m + '/compose?mode=' + mode + '&original=' + encodeURIComponent(tr.getAttribute('data-id')));
  }
  function dialog() {
    var d = document.getElementById('shortcuts');
    if (!d) {
      d = document.createElement('dialog');
      d.id = 'shortcuts';
      d.setAttribute('aria-labelledby', 'shortcuts-title');
      var h = document.createElement('h2');
      h.id = 'shortcuts-title';
      h.textContent = 'Keyboard shortcuts';
      var dl = document.createElement('dl');
      KEYS.forEach(function (k) {
        var dt = document.createElement('dt'), kbd = document.createElement('kbd'), dd = document.createElement('dd');
        kbd.textContent = k[0]; dt.appendChild(kbd); dd.textContent = k[1];
        dl.appendChild(dt); dl.appendChild(dd);
      });
      var close = document.createElement('button');
      close.type = 'button';
      close.textContent = 'Close';
      close.addEventListener('click', function () { d.close(); });
      d.appendChild(h); d.appendChild(dl); d.appendChild(close);
      document.body.appendChild(d);
    }
    if (!d.open) { if (d.showModal) d.showModal(); else d.setAttribute('open', ''); }
  }

  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    var d = document.getElementById('shortcuts');
    if (d && d.open) return; // the dialog has the keyboard (Escape closes it)
    var k = e.key;
    if (k === 'j') move(1);
    else if (k === 'k') move(-1);
    else if (k === 'o' || (k === 'Enter' && selected() && document.activeElement === document.body)) {
      var tr = selected(); var a = tr && tr.querySelector('a.subject'); if (a) go(a.href); else return;
    }
    else if (k === 'r') compose('reply');
    else if (k === 'a') compose('reply-all');
    else if (k === 'f') compose('forward');
    else if (k === 'c') { var m = mailbox() || (window.location.pathname.split('/')[2] || ''); if (m) go('/inbox/' + m + '/compose'); else return; }
    else if (k === '/') { var q = document.getElementById('search-q'); if (q) q.focus(); else return; }
    else if (k === '?') dialog();
    else return;
    e.preventDefault();
  });
})();

// Compose with files (issue 13): without this script the form posts its files itself (up to
// 4 MB in all). With it, each chosen file is first uploaded straight to the mail bucket through
// a presigned PUT (POST .../uploads answers the link; each file up to the service's cap), then
// the form is posted with the uploads' ids and no file. If an upload cannot be made, the form
// is posted as without the script.
(function () {
  function hook() {
    var form = document.getElementById('compose');
    var input = document.getElementById('files');
    var ids = document.getElementById('uploads');
    var status = document.getElementById('upload-status');
    if (!form || !input || !ids || !window.fetch || !window.Promise) return;
    var say = function (t) { if (status) status.textContent = t; };
    var upload = function (file) {
      return fetch(form.getAttribute('data-uploads'), {
        method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: file.name, content_type: file.type || 'application/octet-stream', size: file.size })
      }).then(function (r) {
        return r.json().then(function (v) {
          if (!r.ok) throw new Error((v && v.error && v.error.message) || ('HTTP ' + r.status));
          return v;
        });
      }).then(function (offer) {
        var headers = {};
        Object.keys(offer.upload.headers || {}).forEach(function (k) {
          // The browser sets Content-Length (and Host) itself, from the file.
          if (k.toLowerCase() !== 'content-length' && k.toLowerCase() !== 'host') headers[k] = offer.upload.headers[k];
        });
        return fetch(offer.upload.url, { method: 'PUT', headers: headers, body: file }).then(function (r) {
          if (!r.ok) throw new Error('the upload of ' + file.name + ' failed (HTTP ' + r.status + ')');
          return offer.id;
        });
      });
    };
    form.addEventListener('submit', function (e) {
      if (form.getAttribute('data-uploaded') || !input.files || !input.files.length) return;
      e.preventDefault();
      var files = Array.prototype.slice.call(input.files);
      var send = document.getElementById('send');
      if (send) send.disabled = true;
      say('Uploading ' + files.length + (files.length === 1 ? ' file…' : ' files…'));
      var done = [];
      files.reduce(function (p, f) {
        return p.then(function () { return upload(f).then(function (id) { done.push(id); say('Uploaded ' + done.length + ' of ' + files.length + '.'); }); });
      }, Promise.resolve()).then(function () {
        ids.value = done.join(',');
        input.value = '';
        form.setAttribute('data-uploaded', '1');
        say('Sending…');
        form.submit();
      }, function (err) {
        if (send) send.disabled = false;
        var big = files.some(function (f) { return f.size > 4 * 1024 * 1024; });
        if (big) { say('Not sent: ' + err.message + '. Try again, or attach smaller files.'); return; }
        // Small files: the form carries them itself.
        form.setAttribute('data-uploaded', '1');
        form.submit();
      });
    });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', hook); else hook();
})();
