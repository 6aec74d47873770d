// Import page: send the file with a progress bar, then show the server's progress on the same
// bar, then open the result page. Without JavaScript the form posts as usual and the job's page
// reloads itself until the result shows (web/uploads.py).
(function () {
  var form = document.getElementById("upload");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  var box = document.getElementById("progress-box");
  var bar = document.getElementById("progress");
  var label = document.getElementById("progress-label");
  var problem = document.getElementById("upload-error");
  var button = document.getElementById("import");
  var input = document.getElementById("file");
  var lang = document.documentElement.lang || "vi";
  var POLL_MS = 500;

  function count(n) {
    return Number(n).toLocaleString(lang);
  }

  function stageName(stage) {
    return form.dataset["stage" + stage.charAt(0).toUpperCase() + stage.slice(1)] || stage;
  }

  function show(stage, done, total, text) {
    box.hidden = false;
    box.dataset.stage = stage;
    if (total > 0 && done > 0) {
      bar.max = total;
      bar.value = Math.min(done, total);
    } else {
      bar.removeAttribute("value"); // moving: a stage that has not counted yet
    }
    label.textContent = stageName(stage) + (text ? ": " + text : "");
  }

  function fail(message) {
    problem.textContent = message;
    problem.hidden = false;
    box.hidden = true;
    button.disabled = false;
  }

  function poll(job, misses) {
    var xhr = new XMLHttpRequest();
    xhr.open("GET", job.poll);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.onload = function () {
      if (xhr.status !== 200) return window.location.assign(job.page);
      var state = JSON.parse(xhr.responseText);
      if (state.finished) return window.location.assign(state.page);
      var text = state.total > 0 ? count(state.done) + "/" + count(state.total) : "";
      show(state.stage, state.done, state.total, text);
      window.setTimeout(function () { poll(job, 0); }, POLL_MS);
    };
    xhr.onerror = function () {
      // A slow or dropped line: the work goes on at the server; ask again a little later.
      if (misses > 20) return window.location.assign(job.page);
      window.setTimeout(function () { poll(job, misses + 1); }, 2000);
    };
    xhr.send();
  }

  function answered(xhr) {
    if (xhr.status === 202) return poll(JSON.parse(xhr.responseText), 0);
    var said = null;
    try {
      said = JSON.parse(xhr.responseText).error;
    } catch (e) {
      said = null;
    }
    if (xhr.status === 413) said = form.dataset.tooLarge;
    fail(said || form.dataset.failed + " (" + xhr.status + ")");
  }

  form.addEventListener("submit", function (event) {
    var file = input.files && input.files[0];
    if (!file) return; // the browser says the field is required
    event.preventDefault();
    problem.hidden = true;
    if (file.size > Number(form.dataset.maxBytes)) return fail(form.dataset.tooLarge);
    button.disabled = true;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) {
        show("upload", e.loaded, e.total, Math.floor((100 * e.loaded) / e.total) + "%");
      }
    };
    xhr.onload = function () { answered(xhr); };
    xhr.onerror = function () { fail(form.dataset.failed); };
    show("upload", 0, file.size, "0%");
    xhr.send(new FormData(form));
  });
})();
