// The users/groups picker: searches Microsoft 365 through the console's directory endpoint.
// On the Sync settings page it adds the chosen object id to the scope list; where the picker
// names a fieldset (data-add-to, on the SSO page) it adds a checked checkbox for the group,
// with its name beside it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var picker = document.getElementById("picker");
  var input = document.getElementById("picker-q");
  var results = document.getElementById("picker-results");
  var ids = document.getElementById("scope_ids");
  var scope = document.getElementById("scope");
  var addTo = picker && picker.getAttribute("data-add-to") && document.getElementById(picker.getAttribute("data-add-to"));
  if (!picker || !input || !results || (!addTo && (!ids || !scope))) return;
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
      if (boxes[i].value === e.id) { boxes[i].checked = true; return; }
    }
    var label = document.createElement("label");
    label.className = "check";
    var box = document.createElement("input");
    box.type = "checkbox";
    box.name = field;
    box.value = e.id;
    box.checked = true;
    var name = document.createElement("input");
    name.type = "hidden";
    name.name = field + "_name:" + e.id;
    name.value = e.name;
    label.appendChild(box);
    label.appendChild(document.createTextNode(" " + e.name));
    label.appendChild(name);
    addTo.insertBefore(label, picker.previousElementSibling);
    var none = document.getElementById("sso-no-m365-groups");
    if (none) none.remove();
  }
  var timer = null;
  function search() {
    var q = input.value.trim();
    results.textContent = "";
    if (!q) return;
    var kind = picker.getAttribute("data-kind") || (scope.value === "groups" ? "groups" : "users");
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
});
