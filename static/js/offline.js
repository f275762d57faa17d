// The offline page (templates/pwa/offline.html), shown by the service worker in place of a page that
// could not load: "Try again" loads that page again.
document.querySelector('[data-role="retry"]').addEventListener("click", () => location.reload());
