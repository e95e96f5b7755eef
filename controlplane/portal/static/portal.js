// Progressive enhancement only: every page works without JavaScript.
// 1. Move focus to the error summary so screen reader and keyboard users hear the problem.
// 2. Refresh regions marked data-poll-url (e.g. notebook status) every data-poll-seconds.
document.addEventListener("DOMContentLoaded", () => {
  const summary = document.getElementById("error-summary");
  if (summary) summary.focus();
  document.querySelectorAll("[data-poll-url]").forEach((region) => {
    const seconds = Number(region.dataset.pollSeconds || "3");
    const refresh = async () => {
      try {
        const response = await fetch(region.dataset.pollUrl, { credentials: "same-origin" });
        if (response.ok) {
          const html = await response.text();
          if (html !== region.dataset.lastHtml) {
            region.dataset.lastHtml = html;
            region.innerHTML = html;
          }
        }
      } catch (error) {
        // A missed poll is retried on the next tick.
      }
      window.setTimeout(refresh, seconds * 1000);
    };
    window.setTimeout(refresh, seconds * 1000);
  });
});
