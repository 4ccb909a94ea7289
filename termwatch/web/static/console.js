// termwatch console: the little that needs a browser.
// 1. Tell the server the viewer's offset from UTC, so times show in local time.
// 2. "/" jumps to the search box (unless typing somewhere already).
// 3. The shift's start page reloads itself every data-refresh-s seconds, unless the agent
//    is typing a search.
(function () {
  "use strict";
  var offset = String(-new Date().getTimezoneOffset());
  var current = document.cookie.split("; ").find(function (c) { return c.indexOf("tw_tzo=") === 0; });
  if (!current || current.slice(7) !== offset) {
    document.cookie = "tw_tzo=" + offset + "; path=/; max-age=31536000; samesite=lax";
  }
  var board = document.getElementById("board");
  var every = board ? Number(board.getAttribute("data-refresh-s")) : 0;
  if (every > 0) {
    window.setInterval(function () {
      var box = document.getElementById("q");
      var typing = box && box.value !== "";
      var top = document.getElementById("top-q");
      if (!typing && !(top && top.value !== "")) {
        window.location.reload();
      }
    }, every * 1000);
  }
  document.addEventListener("keydown", function (event) {
    var tag = (event.target && event.target.tagName) || "";
    if (event.key !== "/" || /^(INPUT|TEXTAREA|SELECT)$/.test(tag)) {
      return;
    }
    var box = document.getElementById("q") || document.getElementById("top-q");
    if (box) {
      event.preventDefault();
      box.focus();
      box.select();
    }
  });
})();
