// The users/groups picker of the Sync settings page: searches Microsoft 365 through the
// console's directory endpoint and adds the chosen object id to the list.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var picker = document.getElementById("picker");
  var input = document.getElementById("picker-q");
  var results = document.getElementById("picker-results");
  var ids = document.getElementById("scope_ids");
  var scope = document.getElementById("scope");
  if (!picker || !input || !results || !ids || !scope) return;
  var timer = null;
  function search() {
    var q = input.value.trim();
    results.textContent = "";
    if (!q) return;
    var kind = scope.value === "groups" ? "groups" : "users";
    fetch(picker.getAttribute("data-url") + "?kind=" + kind + "&q=" + encodeURIComponent(q), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (list) {
        results.textContent = "";
        if (!Array.isArray(list)) {
          var li = document.createElement("li");
          li.textContent = (list && list.error) || "The search failed.";
          results.appendChild(li);
          return;
        }
        list.forEach(function (e) {
          var li = document.createElement("li");
          var b = document.createElement("button");
          b.type = "button";
          b.className = "btn btn-quiet";
          b.textContent = "Add";
          b.addEventListener("click", function () {
            var have = ids.value.split(/\s+/).filter(Boolean);
            if (have.indexOf(e.id) < 0) have.push(e.id);
            ids.value = have.join("\n");
          });
          li.appendChild(b);
          li.appendChild(document.createTextNode(" " + e.name + (e.detail ? " (" + e.detail + ")" : "")));
          results.appendChild(li);
        });
      })
      .catch(function () { results.textContent = "The search failed."; });
  }
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(search, 250);
  });
});
