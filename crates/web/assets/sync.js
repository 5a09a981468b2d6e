// The pickers: each `.picker` element searches through its own endpoint (data-url) as its
// input is typed in, and lists the matches with an "Add" button. A page may hold several.
// On the Sync settings page the picker searches Microsoft 365 and adds the chosen object id to
// the scope list. Where a picker names a fieldset (data-add-to, on the SSO page) it adds a
// checked checkbox named data-field there (the Microsoft 365 group picker also keeps the
// group's name beside it, data-keep-name; data-empty names the "none chosen" line to remove).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var pickers = document.querySelectorAll(".picker");
  for (var i = 0; i < pickers.length; i++) setUp(pickers[i]);
});

function setUp(picker) {
  var input = picker.querySelector("input[type=search]");
  var results = picker.querySelector(".picker-results");
  var ids = document.getElementById("scope_ids");
  var scope = document.getElementById("scope");
  var addTo = picker.getAttribute("data-add-to") && document.getElementById(picker.getAttribute("data-add-to"));
  if (!input || !results || (!addTo && (!ids || !scope))) return;
  function add(e) {
    if (!addTo) {
      var have = ids.value.split(/\s+/).filter(Boolean);
      if (have.indexOf(e.id) < 0) have.push(e.id);
      ids.value = have.join("\n");
      return;
    }
    var field = picker.getAttribute("data-field");
    var boxes = addTo.querySelectorAll("input[type=checkbox]");
    for (var i = 0; i < boxes.length; i++) {
      if (boxes[i].name === field && boxes[i].value === e.id) { boxes[i].checked = true; return; }
    }
    var label = document.createElement("label");
    label.className = "check";
    var box = document.createElement("input");
    box.type = "checkbox";
    box.name = field;
    box.value = e.id;
    box.checked = true;
    label.appendChild(box);
    label.appendChild(document.createTextNode(" " + e.name));
    if (picker.hasAttribute("data-keep-name")) {
      var name = document.createElement("input");
      name.type = "hidden";
      name.name = field + "_name:" + e.id;
      name.value = e.name;
      label.appendChild(name);
    }
    // Before the picker's own "Find …" label, after the chosen ones.
    addTo.insertBefore(label, picker.previousElementSibling);
    var none = picker.getAttribute("data-empty") && document.getElementById(picker.getAttribute("data-empty"));
    if (none) none.remove();
  }
  var timer = null;
  function search() {
    var q = input.value.trim();
    results.textContent = "";
    if (!q) return;
    var kind = picker.getAttribute("data-kind") || (scope && scope.value === "groups" ? "groups" : "users");
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
        if (!list.length) {
          var empty = document.createElement("li");
          empty.className = "muted";
          empty.textContent = "Nothing found.";
          results.appendChild(empty);
          return;
        }
        list.forEach(function (e) {
          var li = document.createElement("li");
          var b = document.createElement("button");
          b.type = "button";
          b.className = "btn btn-quiet";
          b.textContent = "Add";
          b.addEventListener("click", function () { add(e); });
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
}
