// The web chat without reloads: sends to /chat/api/ and appends the replies.
// Without this script the page still works: its forms post to /chat.
(function () {
  "use strict";

  var transcript = document.getElementById("transcript");
  var composer = document.getElementById("composer");
  if (!transcript || !composer || !window.fetch || !window.FormData || !window.JSON) {
    return;
  }
  var box = document.getElementById("message");
  var fileInput = document.getElementById("file");
  var notice = document.getElementById("notice");
  var words = JSON.parse(composer.getAttribute("data-page-text"));
  var lastId = parseInt(transcript.getAttribute("data-after"), 10) || 0;
  var shown = {};
  var busy = false;
  var unsent = null; // {text, clientId}: a send that failed; the same id is reused on retry
  var POLL_MS = 60000;

  function newId() {
    if (window.crypto && crypto.randomUUID) {
      return crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function say(text) {
    notice.textContent = text;
    notice.hidden = !text;
  }

  function useLanguage(data) {
    if (data.lang) {
      document.documentElement.lang = data.lang;
      document.documentElement.dir = data.dir || "ltr";
    }
    if (data.page_text) {
      words = data.page_text;
      composer.setAttribute("data-page-text", JSON.stringify(words));
      var labelled = document.querySelectorAll("[data-text]");
      for (var i = 0; i < labelled.length; i++) {
        var key = labelled[i].getAttribute("data-text");
        if (words[key]) {
          labelled[i].textContent = words[key];
        }
      }
      document.title = words.title;
    }
  }

  function markLatest(item) {
    var previous = document.getElementById("latest");
    if (previous) {
      previous.removeAttribute("id");
      previous.removeAttribute("tabindex");
    }
    item.id = "latest";
    item.setAttribute("tabindex", "-1");
  }

  function line(side, text, direction) {
    var item = document.createElement("li");
    item.className = "msg " + (side === "out" ? "bot" : "me");
    item.dir = direction || (side === "out" ? "ltr" : "auto");
    var who = document.createElement("span");
    who.className = "visually-hidden";
    who.setAttribute("data-text", side === "out" ? "bot" : "you");
    who.textContent = side === "out" ? words.bot : words.you;
    item.appendChild(who);
    if (text) {
      var body = document.createElement("p");
      body.className = "text";
      body.textContent = text;
      item.appendChild(body);
    }
    transcript.appendChild(item);
    markLatest(item);
    return item;
  }

  function choicesOf(message) {
    var form = document.createElement("form");
    form.className = "choices";
    form.method = "post";
    form.action = "/chat";
    message.choices.forEach(function (choice) {
      var button = document.createElement("button");
      button.type = "submit";
      button.name = "choice";
      button.value = choice.id;
      button.textContent = choice.label;
      form.appendChild(button);
    });
    return form;
  }

  function showMessages(messages) {
    messages.forEach(function (message) {
      if (shown[message.id]) {
        return;
      }
      shown[message.id] = true;
      lastId = Math.max(lastId, message.id);
      if (!message.text && !message.choices.length) {
        return;
      }
      var item = line("out", message.text, message.direction);
      if (message.choices.length) {
        item.appendChild(choicesOf(message));
      }
    });
    transcript.setAttribute("data-after", String(lastId));
  }

  function removeChoices() {
    var old = transcript.querySelectorAll("form.choices");
    for (var i = 0; i < old.length; i++) {
      old[i].parentNode.removeChild(old[i]);
    }
  }

  function post(url, body, shownText, attachmentName) {
    if (busy) {
      return Promise.resolve(false);
    }
    busy = true;
    transcript.setAttribute("aria-busy", "true");
    say("");
    var mine = shownText || attachmentName ? line("in", shownText) : null;
    if (attachmentName) {
      var file = document.createElement("p");
      file.className = "file";
      file.textContent = "\uD83D\uDCCE " + attachmentName;
      mine.appendChild(file);
    }
    var options = {method: "POST", body: body, credentials: "same-origin",
                   headers: {"Accept": "application/json"}};
    if (typeof body === "string") {
      options.headers["Content-Type"] = "application/json";
    }
    return fetch(url, options).then(function (response) {
      return response.json().catch(function () {
        return {error: words.network};
      }).then(function (data) {
        if (!response.ok) {
          throw {refused: true, text: (data.code && words[data.code]) || data.error};
        }
        return data;
      });
    }).then(function (data) {
      unsent = null;
      useLanguage(data);
      if (data.messages.length) {
        removeChoices();
      }
      showMessages(data.messages);
      composer.scrollIntoView({block: "end"});
      if (data.duplicate) {
        poll();
      }
      return true;
    }).catch(function (error) {
      if (mine) {
        mine.parentNode.removeChild(mine);
      }
      // Refused by the server: sending it again will not help. Otherwise: try again.
      if (error && error.refused) {
        unsent = null;
        fileInput.value = "";
      }
      say(error && error.refused && error.text ? error.text : words.network);
      return false;
    }).then(function (sent) {
      busy = false;
      transcript.removeAttribute("aria-busy");
      box.focus();
      return sent;
    });
  }

  function sendText(text, shownText) {
    var clientId = unsent && unsent.text === text ? unsent.clientId : newId();
    unsent = {text: text, clientId: clientId};
    var body = JSON.stringify({text: text, client_id: clientId,
                               lang: document.documentElement.lang});
    return post("/chat/api/messages", body, shownText);
  }

  function sendFile() {
    var file = fileInput.files[0];
    var form = new FormData();
    form.append("file", file, file.name);
    form.append("text", box.value);
    form.append("client_id", newId());
    form.append("lang", document.documentElement.lang);
    var text = box.value;
    box.value = "";
    return post("/chat/api/attachments", form, text, file.name).then(function (sent) {
      if (sent) {
        fileInput.value = "";
      } else {
        box.value = text;
      }
    });
  }

  function sendComposer() {
    if (busy) {
      return;
    }
    if (fileInput.files && fileInput.files.length) {
      sendFile();
      return;
    }
    var text = box.value;
    box.value = "";
    sendText(text, text).then(function (sent) {
      if (sent === false && !box.value) {
        box.value = text;
      }
    });
  }

  function poll() {
    return fetch("/chat/api/messages?after=" + lastId, {credentials: "same-origin",
                                                          headers: {"Accept": "application/json"}})
      .then(function (response) {
        return response.ok ? response.json() : {messages: []};
      })
      .then(function (data) {
        showMessages(data.messages);
      })
      .catch(function () { /* offline: the next poll catches up */ });
  }

  composer.addEventListener("submit", function (event) {
    event.preventDefault();
    sendComposer();
  });

  // Choice buttons send their id; the transcript shows their label, as on the page.
  transcript.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[name=choice]") : null;
    if (!button || !transcript.contains(button)) {
      return;
    }
    event.preventDefault();
    if (busy) {
      return;
    }
    sendText(button.value, button.textContent);
  });

  // Enter sends on a keyboard; on touch screens Enter keeps making new lines.
  var touch = window.matchMedia && window.matchMedia("(pointer: coarse)").matches;
  if (!touch) {
    document.getElementById("enter-hint").hidden = false;
    box.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing &&
          event.keyCode !== 229) {
        event.preventDefault();
        sendComposer();
      }
    });
  }

  var newest = document.getElementById("latest");
  if (newest && location.hash !== "#latest") {
    newest.scrollIntoView({block: "nearest"});
  }
  setInterval(function () {
    if (!document.hidden) {
      poll();
    }
  }, POLL_MS);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      poll();
    }
  });
}());
