// Launch form: only the partners that offer the chosen service in this district can be picked.
// Without JavaScript the partners stay grouped by service and the server checks the pair.
(function () {
  var pathway = document.getElementById("pathway");
  var partner = document.getElementById("partner");
  if (!pathway || !partner) return;
  function filter() {
    var groups = partner.querySelectorAll("optgroup");
    for (var i = 0; i < groups.length; i++) {
      var match = !pathway.value || groups[i].dataset.pathway === pathway.value;
      groups[i].hidden = !match;
      groups[i].disabled = !match;
    }
    var chosen = partner.selectedOptions[0];
    if (chosen && chosen.parentElement.disabled) partner.value = "";
  }
  pathway.addEventListener("change", filter);
  filter();
})();
