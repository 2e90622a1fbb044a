// The cross-post picker's tree: a main account's "with its satellites" toggle ticks and unticks
// its satellites' own boxes (and its own), so what will be posted is what is ticked; unticking
// one of them turns the toggle off. Without JavaScript the toggle still works: the server adds
// the main account's satellites (with_satellites_of).
(function () {
  "use strict";

  function boxesOf(form, mainId) {
    return form.querySelectorAll('[data-main-of="' + mainId + '"], [data-satellite-of="' + mainId + '"]');
  }

  document.addEventListener("change", function (event) {
    var box = event.target;
    var form = box.closest && box.closest("#crosspost-form");
    if (!form || box.type !== "checkbox") return;
    var toggleOf = box.dataset.togglesSatellitesOf;
    if (toggleOf) {
      boxesOf(form, toggleOf).forEach(function (each) { each.checked = box.checked; });
      return;
    }
    var mainId = box.dataset.mainOf || box.dataset.satelliteOf;
    if (!mainId) return;
    var toggle = form.querySelector('[data-toggles-satellites-of="' + mainId + '"]');
    if (!toggle) return;
    toggle.checked = Array.prototype.every.call(boxesOf(form, mainId), function (each) { return each.checked; });
  });
})();
