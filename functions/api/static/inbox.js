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
