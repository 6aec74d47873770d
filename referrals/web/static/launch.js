// The launch form (launch.html), made quicker without reloading; the server checks everything
// again, and without JavaScript the same form works: partners grouped by service, the consent
// part always shown.
// - Only the partners offering the chosen service (in the chosen district, for a new client
//   registered by someone who works in every district) can be picked.
// - The consent part shows only when no consent of the client covers the chosen partner and
//   service (options marked data-consented); hidden, it is disabled, so nothing of it is sent.
// - The text read to the client names the chosen partner and service and what is shared.
(function () {
  var pathway = document.getElementById("pathway");
  var partner = document.getElementById("partner");
  var district = document.getElementById("district");
  var block = document.getElementById("consent-block");
  if (!pathway || !partner) return;

  function fill(name, text) {
    var spots = document.querySelectorAll('[data-fill="' + name + '"]');
    for (var i = 0; i < spots.length; i++) spots[i].textContent = text || "…";
  }

  function filter() {
    var groups = partner.querySelectorAll("optgroup");
    for (var i = 0; i < groups.length; i++) {
      var match = !pathway.value || groups[i].dataset.pathway === pathway.value;
      groups[i].hidden = !match;
      groups[i].disabled = !match;
      var options = groups[i].querySelectorAll("option");
      for (var j = 0; j < options.length; j++) {
        var areas = " " + (options[j].dataset.areas || "") + " ";
        var away = !!district && areas.indexOf(" " + district.value + " ") < 0;
        options[j].hidden = away;
        options[j].disabled = away;
      }
    }
    var chosen = partner.selectedOptions[0];
    if (chosen && (chosen.disabled || chosen.parentElement.disabled)) partner.value = "";
  }

  function consent() {
    if (!block) return;
    var service = pathway.selectedOptions[0];
    var chosen = partner.selectedOptions[0];
    var needed = !!(chosen && chosen.value && !chosen.dataset.consented);
    block.hidden = !needed;
    block.disabled = !needed;
    fill("partner", chosen && chosen.value ? chosen.dataset.name : "");
    fill("purpose", service && service.value ? service.textContent : "");
    fill("shared", service && service.value ? service.dataset.shared : "");
  }

  function update() {
    filter();
    consent();
  }

  pathway.addEventListener("change", update);
  partner.addEventListener("change", consent);
  if (district) district.addEventListener("change", update);
  update();
})();
