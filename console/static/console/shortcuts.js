// Keyboard shortcuts for the queue and request pages. Plain JavaScript, no dependency; the sheet that lists them
// is templates/console/_shortcuts.html (keep the two together).
//
// The markup it relies on (shared with the queue's template):
//   queue rows        <tr data-inbox-row data-href="URL"> holding <input type=checkbox name=rollback data-trigger=T>
//   batch form        <form id="batch-decision"> around them
//   request page      the Approve / Reject buttons carry data-key="a" / data-key="r" inside the sign-off form
// Rows are looked up on every key press, so a list redrawn by htmx keeps working.
(function () {
  "use strict";

  var ROW = "[data-inbox-row]";
  var armed = null; // the decision button chosen with a / r, submitted by Ctrl+Enter from the comment

  function typing(target) {
    if (!target || !target.tagName) return false;
    if (target.isContentEditable) return true;
    var tag = target.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    if (tag !== "INPUT") return false;
    return ["checkbox", "radio", "button", "submit", "reset"].indexOf(target.type) === -1;
  }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll(ROW));
  }

  // The highlighted row, else the row holding the focus (a checkbox just clicked, a link tabbed to).
  function currentRow() {
    var focused = document.activeElement;
    return document.querySelector(ROW + ".is-current") || (focused && focused.closest && focused.closest(ROW));
  }

  function moveTo(row) {
    var previous = currentRow();
    if (previous) {
      previous.classList.remove("is-current");
      previous.removeAttribute("aria-current");
    }
    row.classList.add("is-current");
    row.setAttribute("aria-current", "true");
    if (!row.hasAttribute("tabindex")) row.tabIndex = -1;
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }

  function step(by) {
    var all = rows();
    if (!all.length) return false;
    var at = all.indexOf(currentRow());
    var next = at === -1 ? (by > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, at + by));
    moveTo(all[next]);
    return true;
  }

  function open(row) {
    if (!row || !row.dataset.href) return false;
    window.location.assign(row.dataset.href);
    return true;
  }

  function toggle(row) {
    var box = row && row.querySelector("input[type=checkbox][name=rollback]");
    if (!box || box.disabled) return false;
    box.click(); // a click, so "change" fires and the trigger lock below follows
    return true;
  }

  // A batch decision covers requests of one trigger: once one is ticked, the others' boxes are disabled.
  function lockTriggers() {
    var form = document.getElementById("batch-decision");
    if (!form) return;
    var boxes = Array.prototype.slice.call(form.querySelectorAll("input[type=checkbox][name=rollback]"));
    var ticked = boxes.filter(function (box) { return box.checked; });
    var trigger = ticked.length ? ticked[0].dataset.trigger : null;
    boxes.forEach(function (box) {
      var other = trigger !== null && box.dataset.trigger !== trigger;
      box.disabled = other && !box.checked;
      box.title = box.disabled ? "A batch decision covers requests of one trigger (" + trigger + ")" : "";
    });
    var status = form.querySelector("[data-batch-status]");
    if (status) {
      status.textContent = ticked.length
        ? ticked.length + " selected (" + trigger.replace(/_/g, " ") + ")"
        : "";
    }
  }

  function sheet() {
    return document.getElementById("shortcuts");
  }

  var opener = null;

  function showSheet() {
    var dialog = sheet();
    if (!dialog || dialog.open) return false;
    opener = document.activeElement;
    dialog.showModal();
    return true;
  }

  function decisionButton(key) {
    return document.querySelector("button[data-key='" + key + "']");
  }

  // a / r: choose the decision and put the person in the comment; Ctrl+Enter there submits through the button, so
  // the form's own submit handlers (a confirmation included) run as for a click.
  function arm(key) {
    var button = decisionButton(key);
    if (!button || !button.form) return false;
    disarm();
    armed = button;
    button.classList.add("armed");
    var comment = button.form.querySelector("textarea[name=comment]");
    if (comment) {
      comment.focus();
    } else {
      submit(button);
    }
    return true;
  }

  function disarm() {
    if (armed) armed.classList.remove("armed");
    armed = null;
  }

  function submit(button) {
    var form = button.form;
    if (typeof form.requestSubmit === "function") {
      form.requestSubmit(button);
    } else {
      button.click();
    }
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (typing(target)) {
      if (target.tagName === "TEXTAREA" && armed && target.form === armed.form) {
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
          event.preventDefault();
          submit(armed);
        } else if (event.key === "Escape") {
          disarm();
          target.blur();
        }
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    var dialog = sheet();
    if (dialog && dialog.open) return; // the dialog closes itself on Escape
    var handled = false;
    switch (event.key) {
      case "j":
        handled = step(1);
        break;
      case "k":
        handled = step(-1);
        break;
      case "o":
        handled = open(currentRow());
        break;
      case "Enter":
        // Enter on a link or button does what it always does; on a row (or nothing) it opens the current row.
        if (target === document.body || (target.matches && target.matches(ROW))) handled = open(currentRow());
        break;
      case "x":
        handled = toggle(currentRow());
        break;
      case "a":
      case "r":
        handled = arm(event.key);
        break;
      case "?":
        handled = showSheet();
        break;
    }
    if (handled) event.preventDefault();
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("#batch-decision input[type=checkbox][name=rollback]")) {
      lockTriggers();
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-shortcuts-open]");
    if (button) showSheet();
  });

  document.addEventListener("DOMContentLoaded", function () {
    lockTriggers(); // boxes the browser restored on "back"
    var dialog = sheet();
    if (dialog) {
      dialog.addEventListener("close", function () {
        if (opener && opener.focus) opener.focus();
        opener = null;
      });
    }
  });
})();
